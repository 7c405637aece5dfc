<?xml version="1.0" encoding="UTF-8"?>
<!-- ACME's purchase order (XML, namespace urn:acme:po) to the canonical order (JSON). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:po="urn:acme:po">
  <xsl:output method="text" media-type="application/json"/>
  <xsl:template match="/po:PurchaseOrder">
    <xsl:text>{"orderId":"</xsl:text><xsl:value-of select="@number"/>
    <xsl:text>","partner":"acme","buyer":"</xsl:text><xsl:value-of select="po:Buyer"/>
    <xsl:text>","currency":"</xsl:text><xsl:value-of select="@currency"/>
    <xsl:text>","lines":[</xsl:text>
    <xsl:for-each select="po:Line">
      <xsl:sort select="@no" data-type="number"/>
      <xsl:if test="position() &gt; 1">,</xsl:if>
      <xsl:text>{"sku":"</xsl:text><xsl:value-of select="po:Sku"/>
      <xsl:text>","qty":</xsl:text><xsl:value-of select="po:Qty"/>
      <xsl:text>,"price":</xsl:text><xsl:value-of select="po:Price"/>
      <xsl:text>}</xsl:text>
    </xsl:for-each>
    <xsl:text>]}</xsl:text>
  </xsl:template>
</xsl:stylesheet>
