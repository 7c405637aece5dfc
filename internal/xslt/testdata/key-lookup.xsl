<?xml version="1.0"?>
<!-- Cross reference with keys: order lines priced from the catalog, unknown codes flagged. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output indent="yes"/>
  <xsl:key name="product" match="Product" use="@code"/>
  <xsl:key name="cat" match="Product" use="@category"/>
  <xsl:key name="orders-of" match="Order" use="@customer"/>
  <xsl:template match="/Feed">
    <priced>
      <xsl:apply-templates select="Orders/Order"/>
      <categories>
        <xsl:for-each select="Catalog/Product[generate-id() = generate-id(key('cat', @category)[1])]">
          <c name="{@category}" n="{count(key('cat', @category))}" codes="{count(key('product', key('cat', @category)/@code))}"/>
        </xsl:for-each>
      </categories>
      <alpha orders="{count(key('orders-of', 'alpha'))}" none="{count(key('orders-of', 'nobody'))}"/>
    </priced>
  </xsl:template>
  <xsl:template match="Order">
    <order id="{@id}">
      <xsl:for-each select="Ref">
        <xsl:variable name="p" select="key('product', @code)"/>
        <xsl:choose>
          <xsl:when test="$p"><line code="{@code}" name="{$p/Name}" amount="{format-number(@qty * $p/Price, '0.00')}"/></xsl:when>
          <xsl:otherwise><unknown code="{@code}"/></xsl:otherwise>
        </xsl:choose>
      </xsl:for-each>
    </order>
  </xsl:template>
</xsl:stylesheet>
