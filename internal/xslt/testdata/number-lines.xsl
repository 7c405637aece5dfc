<?xml version="1.0"?>
<!-- Numbering: single, multiple and any levels, count and from, formats, grouping. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:template match="/">
    <xsl:apply-templates select="//Title"/>
    <xsl:for-each select="//Para">
      <xsl:number level="any" format="(a) "/>
      <xsl:number level="any" count="Para" from="Chapter" format="i. "/>
      <xsl:number level="multiple" count="Chapter|Section" format="1.1 "/>
      <xsl:value-of select="normalize-space(.)"/>
      <xsl:text>&#10;</xsl:text>
    </xsl:for-each>
    <xsl:for-each select="//Section">
      <xsl:number level="multiple" count="Chapter|Section" format="A-01: "/>
      <xsl:number count="Section" format="I"/>
      <xsl:text>|</xsl:text>
    </xsl:for-each>
    <xsl:text>&#10;</xsl:text>
    <xsl:number value="1234567" grouping-separator="." grouping-size="3"/>
    <xsl:text> </xsl:text>
    <xsl:number value="28" format="A"/>
    <xsl:text> </xsl:text>
    <xsl:number value="1999" format="i"/>
    <xsl:text> </xsl:text>
    <xsl:number value="7.5" format="001"/>
    <xsl:text> </xsl:text>
    <xsl:number value="3" format="[1]"/>
    <xsl:text>&#10;</xsl:text>
    <xsl:number value="4500" format="I"/>|<xsl:number value="6000" format="i" grouping-separator="," grouping-size="3"/>|<xsl:number value="0" format="a"/>|<xsl:number value="12" format="&#x661;"/>|<xsl:number value="7" format="x"/>|<xsl:number value="1 div 0"/>|<xsl:number value="702" format="a"/>|<xsl:number value="3" format="01-"/>
    <xsl:text>&#10;</xsl:text>
  </xsl:template>
  <xsl:template match="Title">
    <xsl:number level="multiple" count="Chapter|Section|Appendix"/>
    <xsl:text> </xsl:text>
    <xsl:value-of select="normalize-space()"/>
    <xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
