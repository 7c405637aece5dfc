<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output indent="yes" method="xml"/>
  <xsl:variable name="who">base</xsl:variable>
  <xsl:template match="Item">
    <item sku="{@sku}" by="{$who}"/>
  </xsl:template>
  <xsl:template match="Carrier">
    <carrier><xsl:value-of select="."/></carrier>
  </xsl:template>
  <xsl:template name="stamp"><stamp from="base"/></xsl:template>
</xsl:stylesheet>
