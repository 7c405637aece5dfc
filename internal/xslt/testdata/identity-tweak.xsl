<?xml version="1.0"?>
<!-- Identity transform with tweaks: rename, drop, add, rewrite values. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:p="urn:partner:po:1">
  <xsl:template match="@*|node()">
    <xsl:copy><xsl:apply-templates select="@*|node()"/></xsl:copy>
  </xsl:template>
  <xsl:template match="p:Notes"/>
  <xsl:template match="p:UnitPrice">
    <p:UnitPrice><xsl:value-of select="format-number(., '0.000')"/></p:UnitPrice>
  </xsl:template>
  <xsl:template match="p:Line/@no">
    <xsl:attribute name="lineNumber"><xsl:value-of select="."/></xsl:attribute>
  </xsl:template>
  <xsl:template match="p:Header">
    <xsl:copy>
      <xsl:attribute name="processed">true</xsl:attribute>
      <xsl:apply-templates select="@*|node()"/>
      <p:ReceivedBy>sluice</p:ReceivedBy>
    </xsl:copy>
  </xsl:template>
  <xsl:template match="comment()|processing-instruction()"/>
</xsl:stylesheet>
