<?xml version="1.0"?>
<!-- CSV export: quoted fields, doubled quotes, CRLF line ends. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:p="urn:partner:po:1">
  <xsl:output method="text" encoding="utf-8"/>
  <xsl:template match="/">
    <xsl:text>line,sku,description,qty,price&#13;&#10;</xsl:text>
    <xsl:for-each select="//p:Line">
      <xsl:value-of select="@no"/>,<xsl:value-of select="p:SKU"/>,<xsl:call-template name="field"><xsl:with-param name="v" select="p:Description"/></xsl:call-template>,<xsl:value-of select="p:Qty"/>,<xsl:value-of select="p:UnitPrice"/>
      <xsl:text>&#13;&#10;</xsl:text>
    </xsl:for-each>
  </xsl:template>
  <xsl:template name="field">
    <xsl:param name="v"/>
    <xsl:choose>
      <xsl:when test="contains($v, ',') or contains($v, '&quot;')">
        <xsl:text>"</xsl:text>
        <xsl:call-template name="dq"><xsl:with-param name="v" select="$v"/></xsl:call-template>
        <xsl:text>"</xsl:text>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$v"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
  <xsl:template name="dq">
    <xsl:param name="v"/>
    <xsl:choose>
      <xsl:when test="contains($v, '&quot;')">
        <xsl:value-of select="concat(substring-before($v, '&quot;'), '&quot;&quot;')"/>
        <xsl:call-template name="dq"><xsl:with-param name="v" select="substring-after($v, '&quot;')"/></xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$v"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
