<?xml version="1.0"?>
<!-- Routing decisions with choose/when/otherwise, if, and boolean logic. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output omit-xml-declaration="yes"/>
  <xsl:template match="/ShipNotice">
    <routes>
      <xsl:for-each select="Item">
        <route sku="{@sku}">
          <xsl:attribute name="queue">
            <xsl:choose>
              <xsl:when test="@qty &gt;= 10 and starts-with(@po, 'PO-100')">bulk</xsl:when>
              <xsl:when test="@qty &lt; 2 or @pallet = 'P2'">small</xsl:when>
              <xsl:when test="contains(@sku, '-8')">special</xsl:when>
              <xsl:otherwise>standard</xsl:otherwise>
            </xsl:choose>
          </xsl:attribute>
          <xsl:if test="position() = last()"><xsl:attribute name="last">true</xsl:attribute></xsl:if>
          <xsl:if test="not(preceding-sibling::Item[@po = current()/@po])">first-of-po</xsl:if>
        </route>
      </xsl:for-each>
    </routes>
  </xsl:template>
</xsl:stylesheet>
