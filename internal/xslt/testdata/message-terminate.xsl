<?xml version="1.0"?>
<!-- A validation rule that stops the transformation. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/Invoice">
    <xsl:message>checking <xsl:value-of select="@number"/></xsl:message>
    <xsl:if test="Item[@tax = 0]">
      <xsl:message terminate="yes">item without tax: <xsl:value-of select="Item[@tax = 0]/@sku"/></xsl:message>
    </xsl:if>
    <ok/>
  </xsl:template>
</xsl:stylesheet>
