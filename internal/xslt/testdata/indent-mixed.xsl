<?xml version="1.0"?>
<!-- indent="yes" with element-only and mixed content, comments and PIs. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output indent="yes" encoding="UTF-8" standalone="yes"/>
  <xsl:template match="/">
    <xsl:comment> generated </xsl:comment>
    <xsl:apply-templates/>
  </xsl:template>
  <xsl:template match="Manual">
    <book v="{@version}">
      <xsl:processing-instruction name="render">mode="print"</xsl:processing-instruction>
      <xsl:apply-templates select="*"/>
      <empty/>
      <deep><a><b><c>x</c></b></a></deep>
    </book>
  </xsl:template>
  <xsl:template match="Chapter|Section|Appendix">
    <part><xsl:apply-templates select="*"/></part>
  </xsl:template>
  <xsl:template match="Title"><title><xsl:value-of select="."/></title></xsl:template>
  <xsl:template match="Para"><para><xsl:copy-of select="node()"/></para></xsl:template>
</xsl:stylesheet>
