<?xml version="1.0"?>
<!-- A partner stylesheet with an XPath syntax error: both processors refuse it. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <total><xsl:value-of select="sum(//Item/@qty * )"/></total>
  </xsl:template>
</xsl:stylesheet>
