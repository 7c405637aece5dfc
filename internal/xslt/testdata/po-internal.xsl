<?xml version="1.0"?>
<!-- Purchase order (partner format) to Sluice's internal order. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:po="urn:partner:po:1" xmlns:a="urn:partner:address"
    exclude-result-prefixes="po a">
  <xsl:output method="xml" encoding="UTF-8"/>
  <xsl:template match="/po:PurchaseOrder">
    <order source="partner" id="{po:Header/po:PONumber}" date="{@orderDate}">
      <buyer ref="{po:Header/po:Buyer/@id}">
        <name><xsl:value-of select="po:Header/po:Buyer/po:Name"/></name>
        <xsl:apply-templates select="po:Header/po:Buyer/a:Address"/>
      </buyer>
      <xsl:if test="po:Header/po:Notes">
        <note><xsl:value-of select="po:Header/po:Notes"/></note>
      </xsl:if>
      <lines count="{count(po:Lines/po:Line)}">
        <xsl:apply-templates select="po:Lines/po:Line"/>
      </lines>
      <total currency="{@currency}">
        <xsl:call-template name="sum-lines">
          <xsl:with-param name="lines" select="po:Lines/po:Line"/>
        </xsl:call-template>
      </total>
    </order>
  </xsl:template>
  <xsl:template match="a:Address">
    <address kind="{@type}">
      <xsl:value-of select="concat(a:Street, ', ', a:Zip, ' ', a:City, ' (', a:Country, ')')"/>
    </address>
  </xsl:template>
  <xsl:template match="po:Line">
    <line n="{@no}" sku="{po:SKU}" qty="{po:Qty}" uom="{po:Qty/@unit}">
      <xsl:attribute name="amount"><xsl:value-of select="format-number(po:Qty * po:UnitPrice, '0.00')"/></xsl:attribute>
      <xsl:value-of select="po:Description"/>
    </line>
  </xsl:template>
  <xsl:template name="sum-lines">
    <xsl:param name="lines"/>
    <xsl:param name="acc" select="0"/>
    <xsl:choose>
      <xsl:when test="$lines">
        <xsl:call-template name="sum-lines">
          <xsl:with-param name="lines" select="$lines[position() &gt; 1]"/>
          <xsl:with-param name="acc" select="$acc + $lines[1]/po:Qty * $lines[1]/po:UnitPrice"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="format-number($acc, '#,##0.00')"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
