<?xml version="1.0"?>
<!-- Global and local variables, shadowing a global, parameter defaults, fragments. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:variable name="rate" select="0.2"/>
  <xsl:variable name="count" select="count(//Item)"/>
  <xsl:variable name="frag">A<b>B</b>C</xsl:variable>
  <xsl:template match="/">
    <xsl:value-of select="concat('global rate ', $rate, ' count ', $count, ' frag ', $frag, ' len ', string-length($frag), '&#10;')"/>
    <xsl:variable name="rate" select="0.5"/>
    <xsl:value-of select="concat('local rate ', $rate, '&#10;')"/>
    <xsl:for-each select="//Item">
      <xsl:variable name="net" select="@qty * @price"/>
      <xsl:call-template name="line">
        <xsl:with-param name="net" select="$net"/>
      </xsl:call-template>
    </xsl:for-each>
    <xsl:call-template name="line"/>
    <xsl:variable name="empty"/>
    <xsl:value-of select="concat('[', $empty, '] ', boolean($frag), ' ', string($frag) = 'ABC', ' ', number($count) + 1, '&#10;')"/>
  </xsl:template>
  <xsl:template name="line">
    <xsl:param name="net" select="-1"/>
    <xsl:param name="tax" select="$net * $rate"/>
    <xsl:value-of select="concat('net ', $net, ' tax ', round($tax * 100) div 100, '&#10;')"/>
  </xsl:template>
</xsl:stylesheet>
