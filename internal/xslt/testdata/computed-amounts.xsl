<?xml version="1.0"?>
<!-- Computed amounts written with value-of and attribute value templates, as libxml2 formats numbers. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:p="urn:partner:po:1" exclude-result-prefixes="p">
  <xsl:output indent="yes"/>
  <xsl:template match="/p:PurchaseOrder">
    <amounts>
      <xsl:for-each select="p:Lines/p:Line">
        <line n="{@no}" net="{p:Qty * p:UnitPrice}" vat="{p:Qty * p:UnitPrice * 0.19}">
          <xsl:value-of select="p:Qty * p:UnitPrice * 1.19"/>
        </line>
      </xsl:for-each>
      <total><xsl:value-of select="sum(p:Lines/p:Line/p:UnitPrice)"/></total>
      <avg><xsl:value-of select="sum(p:Lines/p:Line/p:Qty) div count(p:Lines/p:Line)"/></avg>
      <big><xsl:value-of select="sum(p:Lines/p:Line/p:Qty) * 10000000"/></big>
      <tiny><xsl:value-of select="1 div sum(p:Lines/p:Line/p:Qty) div 1000"/></tiny>
      <xsl:copy-of select="0.1 + 0.2"/>
    </amounts>
  </xsl:template>
</xsl:stylesheet>
