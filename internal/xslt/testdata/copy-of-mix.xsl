<?xml version="1.0"?>
<!-- copy-of of nodes, attributes, strings, numbers and fragments. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <xsl:variable name="frag"><x a="1">t<y/></x><z/></xsl:variable>
    <r>
      <xsl:copy-of select="//Seller"/>
      <item><xsl:copy-of select="//Item[1]/@*"/><xsl:copy-of select="//Item[1]/text()"/></item>
      <xsl:copy-of select="3 * 7"/>
      <xsl:copy-of select="'-str-'"/>
      <xsl:copy-of select="1 = 1"/>
      <xsl:copy-of select="$frag"/>
      <n><xsl:value-of select="count(//node())"/></n>
    </r>
  </xsl:template>
</xsl:stylesheet>
