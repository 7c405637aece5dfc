<?xml version="1.0"?>
<!-- Result tree fragments as values, and exsl:node-set() to navigate them. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:exsl="http://exslt.org/common" extension-element-prefixes="exsl">
  <xsl:output indent="yes"/>
  <xsl:variable name="rates">
    <rate cur="EUR">1</rate>
    <rate cur="USD">0.92</rate>
    <rate cur="GBP">1.17</rate>
  </xsl:variable>
  <xsl:template match="/Feed">
    <xsl:variable name="lines">
      <xsl:for-each select="Orders/Order/Ref">
        <l code="{@code}" qty="{@qty}" price="{/Feed/Catalog/Product[@code = current()/@code]/Price}"/>
      </xsl:for-each>
    </xsl:variable>
    <xsl:variable name="priced" select="exsl:node-set($lines)/l[@price != '']"/>
    <summary lines="{count(exsl:node-set($lines)/l)}" priced="{count($priced)}" usd="{exsl:node-set($rates)/rate[@cur='USD']}">
      <xsl:for-each select="$priced">
        <xsl:sort select="@qty * @price" data-type="number" order="descending"/>
        <xsl:if test="position() &lt;= 3"><top code="{@code}" value="{@qty * @price}"/></xsl:if>
      </xsl:for-each>
      <text><xsl:value-of select="$rates"/></text>
      <copy><xsl:copy-of select="$rates"/></copy>
      <type><xsl:value-of select="concat(exsl:object-type($rates), ' ', exsl:object-type($priced), ' ', exsl:object-type(1), ' ', exsl:object-type('s'), ' ', exsl:object-type(true()))"/></type>
      <fa><xsl:value-of select="concat(function-available('exsl:node-set'), function-available('concat'), function-available('format-number'), function-available('nope'))"/></fa>
    </summary>
  </xsl:template>
</xsl:stylesheet>
