<?xml version="1.0"?>
<!-- Splitting delimited strings by call-template recursion. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output indent="yes"/>
  <xsl:template match="/">
    <tokens>
      <xsl:call-template name="split">
        <xsl:with-param name="s" select="'PO-1;PO-2;;PO-17; PO-4 '"/>
      </xsl:call-template>
      <xsl:call-template name="split">
        <xsl:with-param name="s" select="translate(normalize-space(//Title[1]), ' ', ',')"/>
        <xsl:with-param name="sep" select="','"/>
      </xsl:call-template>
      <reversed><xsl:call-template name="reverse"><xsl:with-param name="s" select="'ABC-123'"/></xsl:call-template></reversed>
      <repeat><xsl:call-template name="repeat"><xsl:with-param name="n" select="5"/></xsl:call-template></repeat>
    </tokens>
  </xsl:template>
  <xsl:template name="split">
    <xsl:param name="s"/>
    <xsl:param name="sep" select="';'"/>
    <xsl:choose>
      <xsl:when test="contains($s, $sep)">
        <t><xsl:value-of select="normalize-space(substring-before($s, $sep))"/></t>
        <xsl:call-template name="split">
          <xsl:with-param name="s" select="substring-after($s, $sep)"/>
          <xsl:with-param name="sep" select="$sep"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="string-length($s) &gt; 0"><t last="yes"><xsl:value-of select="normalize-space($s)"/></t></xsl:when>
    </xsl:choose>
  </xsl:template>
  <xsl:template name="reverse">
    <xsl:param name="s"/>
    <xsl:if test="$s != ''">
      <xsl:call-template name="reverse"><xsl:with-param name="s" select="substring($s, 2)"/></xsl:call-template>
      <xsl:value-of select="substring($s, 1, 1)"/>
    </xsl:if>
  </xsl:template>
  <xsl:template name="repeat">
    <xsl:param name="n"/>
    <xsl:if test="$n &gt; 0">*<xsl:call-template name="repeat"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template></xsl:if>
  </xsl:template>
</xsl:stylesheet>
