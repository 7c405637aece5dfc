<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:po="urn:acme:po"
    exclude-result-prefixes="po">
  <xsl:output method="xml" indent="no"/>
  <xsl:template match="/po:PurchaseOrder">
    <Order id="{@number}" currency="{@currency}">
      <xsl:for-each select="po:Line">
        <Item sku="{po:Sku}" qty="{po:Qty}"/>
      </xsl:for-each>
    </Order>
  </xsl:template>
</xsl:stylesheet>
