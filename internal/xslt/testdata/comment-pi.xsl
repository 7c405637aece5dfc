<?xml version="1.0"?>
<!-- Comments and processing instructions: copied, built, and matched. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <xsl:processing-instruction name="xml-stylesheet">href="view.css" type="text/css"</xsl:processing-instruction>
    <log>
      <xsl:apply-templates select="node()"/>
      <xsl:comment>a - b</xsl:comment>
      <xsl:comment/>
      <xsl:processing-instruction name="empty"/>
    </log>
  </xsl:template>
  <xsl:template match="comment()"><c><xsl:value-of select="."/></c><xsl:copy/></xsl:template>
  <xsl:template match="processing-instruction()"><pi name="{name()}"><xsl:value-of select="."/></pi><xsl:copy/></xsl:template>
  <xsl:template match="*"><e name="{name()}"/></xsl:template>
</xsl:stylesheet>
