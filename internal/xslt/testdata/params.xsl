<?xml version="1.0"?>
<!-- Top-level parameters set by the caller, with defaults and globals depending on them. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:param name="partner" select="'unknown'"/>
  <xsl:param name="threshold" select="10"/>
  <xsl:param name="env">prod</xsl:param>
  <xsl:variable name="label" select="concat('[', $partner, '@', $env, ']')"/>
  <xsl:variable name="big" select="//Item[@qty &gt; $threshold]"/>
  <xsl:template match="/">
    <xsl:value-of select="$label"/>
    <xsl:text> big items: </xsl:text>
    <xsl:for-each select="$big"><xsl:value-of select="@sku"/><xsl:text> </xsl:text></xsl:for-each>
    <xsl:value-of select="concat('threshold=', $threshold, ' (', $threshold * 2, ')&#10;')"/>
  </xsl:template>
</xsl:stylesheet>
