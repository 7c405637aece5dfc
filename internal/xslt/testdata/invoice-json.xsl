<?xml version="1.0"?>
<!-- Invoice to JSON: strings escaped by recursion. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:template match="/Invoice">
    <xsl:text>{"number":</xsl:text><xsl:call-template name="str"><xsl:with-param name="s" select="@number"/></xsl:call-template>
    <xsl:text>,"issued":"</xsl:text><xsl:value-of select="@issued"/><xsl:text>",</xsl:text>
    <xsl:text>"seller":</xsl:text><xsl:apply-templates select="Seller"/>
    <xsl:text>,"buyer":</xsl:text><xsl:apply-templates select="Buyer"/>
    <xsl:text>,"items":[</xsl:text>
    <xsl:for-each select="Item">
      <xsl:if test="position() &gt; 1">,</xsl:if>
      <xsl:text>{"sku":"</xsl:text><xsl:value-of select="@sku"/>
      <xsl:text>","description":</xsl:text>
      <xsl:call-template name="str"><xsl:with-param name="s" select="normalize-space(.)"/></xsl:call-template>
      <xsl:text>,"quantity":</xsl:text><xsl:value-of select="@qty"/>
      <xsl:text>,"net":</xsl:text><xsl:value-of select="format-number(@qty * @price, '0.00')"/>
      <xsl:text>,"tax":</xsl:text><xsl:value-of select="format-number(@qty * @price * @tax, '0.00')"/>
      <xsl:text>}</xsl:text>
    </xsl:for-each>
    <xsl:text>],"total":</xsl:text>
    <xsl:variable name="net" select="sum(Item/@qty) "/>
    <xsl:call-template name="total"/>
    <xsl:text>,"lines":</xsl:text><xsl:value-of select="count(Item)"/>
    <xsl:text>,"paid":</xsl:text><xsl:value-of select="boolean(Payment/@paid)"/>
    <xsl:text>,"dueDays":</xsl:text><xsl:value-of select="Payment/@terms + 0"/>
    <xsl:text>}&#10;</xsl:text>
  </xsl:template>
  <xsl:template match="Seller|Buyer">
    <xsl:text>{"name":</xsl:text>
    <xsl:call-template name="str"><xsl:with-param name="s" select="Name"/></xsl:call-template>
    <xsl:text>,"vat":"</xsl:text><xsl:value-of select="VAT"/><xsl:text>"}</xsl:text>
  </xsl:template>
  <xsl:template name="total">
    <xsl:param name="items" select="Item"/>
    <xsl:param name="sum" select="0"/>
    <xsl:choose>
      <xsl:when test="not($items)"><xsl:value-of select="round($sum * 100) div 100"/></xsl:when>
      <xsl:otherwise>
        <xsl:call-template name="total">
          <xsl:with-param name="items" select="$items[position() != 1]"/>
          <xsl:with-param name="sum" select="$sum + $items[1]/@qty * $items[1]/@price * (1 + $items[1]/@tax)"/>
        </xsl:call-template>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>
  <!-- JSON string: escape backslash and quote, one character class at a time. -->
  <xsl:template name="str">
    <xsl:param name="s"/>
    <xsl:text>"</xsl:text>
    <xsl:call-template name="escape">
      <xsl:with-param name="s">
        <xsl:call-template name="replace">
          <xsl:with-param name="s" select="string($s)"/>
          <xsl:with-param name="from" select="'\'"/>
          <xsl:with-param name="to" select="'\\'"/>
        </xsl:call-template>
      </xsl:with-param>
    </xsl:call-template>
    <xsl:text>"</xsl:text>
  </xsl:template>
  <xsl:template name="escape">
    <xsl:param name="s"/>
    <xsl:call-template name="replace">
      <xsl:with-param name="s" select="$s"/>
      <xsl:with-param name="from" select="'&quot;'"/>
      <xsl:with-param name="to" select="'\&quot;'"/>
    </xsl:call-template>
  </xsl:template>
  <xsl:template name="replace">
    <xsl:param name="s"/><xsl:param name="from"/><xsl:param name="to"/>
    <xsl:choose>
      <xsl:when test="contains($s, $from)">
        <xsl:value-of select="substring-before($s, $from)"/><xsl:value-of select="$to"/>
        <xsl:call-template name="replace">
          <xsl:with-param name="s" select="substring-after($s, $from)"/>
          <xsl:with-param name="from" select="$from"/><xsl:with-param name="to" select="$to"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$s"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
