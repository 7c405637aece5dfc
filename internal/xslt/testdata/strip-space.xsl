<?xml version="1.0"?>
<!-- strip-space and preserve-space decide which whitespace text nodes remain. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:strip-space elements="*"/>
  <xsl:preserve-space elements="Section"/>
  <xsl:output method="text"/>
  <xsl:template match="/">
    <xsl:for-each select="//*">
      <xsl:value-of select="concat(name(), ':', count(text()), ':', count(node()), ' ')"/>
    </xsl:for-each>
    <xsl:text>&#10;[</xsl:text>
    <xsl:copy-of select="/"/>
    <xsl:text>]</xsl:text>
  </xsl:template>
</xsl:stylesheet>
