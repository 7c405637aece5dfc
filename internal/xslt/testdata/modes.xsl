<?xml version="1.0"?>
<!-- Modes: the same nodes processed for a table of contents and for the body. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="xml" omit-xml-declaration="yes" indent="yes"/>
  <xsl:template match="/Manual">
    <manual>
      <toc><xsl:apply-templates select="Chapter|Appendix" mode="toc"/></toc>
      <xsl:apply-templates select="Chapter"/>
      <xsl:apply-templates select="Appendix" mode="unknown"/>
    </manual>
  </xsl:template>
  <xsl:template match="Chapter|Appendix" mode="toc">
    <entry ref="{@id}"><xsl:value-of select="Title"/></entry>
    <xsl:apply-templates select="Section" mode="toc"/>
  </xsl:template>
  <xsl:template match="Section" mode="toc">
    <sub><xsl:value-of select="Title"/></sub>
  </xsl:template>
  <xsl:template match="Chapter">
    <chapter><xsl:apply-templates/></chapter>
  </xsl:template>
  <xsl:template match="Title"><h><xsl:apply-templates/></h></xsl:template>
  <xsl:template match="Para"><p><xsl:apply-templates/></p></xsl:template>
  <xsl:template match="b|i"><em><xsl:value-of select="."/></em></xsl:template>
</xsl:stylesheet>
