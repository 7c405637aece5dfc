<?xml version="1.0"?>
<!-- Orders sorted by customer (text), then by amount (number, descending); products by price. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:key name="product" match="Product" use="@code"/>
  <xsl:template match="/Feed">
    <xsl:for-each select="Orders/Order">
      <xsl:sort select="@customer"/>
      <xsl:sort select="sum(Ref/@qty)" data-type="number" order="descending"/>
      <xsl:value-of select="concat(position(), '/', last(), ' ', @customer, ' ', @id, ' ', sum(Ref/@qty), '&#10;')"/>
    </xsl:for-each>
    <xsl:for-each select="Catalog/Product">
      <xsl:sort select="Price" data-type="number"/>
      <xsl:sort select="Name" order="descending"/>
      <xsl:value-of select="concat(@code, '=', Price, ';')"/>
    </xsl:for-each>
    <xsl:text>&#10;</xsl:text>
    <xsl:apply-templates select="Catalog/Product">
      <xsl:sort select="@category" case-order="upper-first"/>
      <xsl:sort select="Weight * 1000" data-type="number" order="descending"/>
    </xsl:apply-templates>
    <xsl:for-each select="Orders/Order/Ref">
      <xsl:sort select="key('product', @code)/Price * @qty" data-type="number"/>
      <xsl:value-of select="concat(../@id, ':', @code, ' ')"/>
    </xsl:for-each>
  </xsl:template>
  <xsl:template match="Product">
    <xsl:value-of select="concat(@category, '/', @code, ' ', position(), '&#10;')"/>
  </xsl:template>
</xsl:stylesheet>
