<?xml version="1.0"?>
<!-- Purchase order to an X12 850-like flat file: fixed segments, padded fields. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:p="urn:partner:po:1" xmlns:a="urn:partner:address">
  <xsl:output method="text"/>
  <xsl:strip-space elements="*"/>
  <xsl:variable name="nl" select="'&#10;'"/>
  <xsl:variable name="spaces" select="'                              '"/>
  <xsl:template match="/">
    <xsl:apply-templates select="p:PurchaseOrder"/>
  </xsl:template>
  <xsl:template match="p:PurchaseOrder">
    <xsl:value-of select="concat('ST*850*', format-number(1, '0000'), '~', $nl)"/>
    <xsl:value-of select="concat('BEG*00*SA*', p:Header/p:PONumber, '**', translate(@orderDate, '-', ''), '~', $nl)"/>
    <xsl:apply-templates select="p:Header/p:Buyer/a:Address[@type='ship']"/>
    <xsl:apply-templates select="p:Lines/p:Line"/>
    <xsl:value-of select="concat('CTT*', count(p:Lines/p:Line), '*', sum(p:Lines/p:Line/p:Qty), '~', $nl)"/>
    <xsl:value-of select="concat('SE*', count(p:Lines/p:Line) + 4, '*0001~', $nl)"/>
  </xsl:template>
  <xsl:template match="a:Address">
    <xsl:text>N1*ST*</xsl:text>
    <xsl:call-template name="pad"><xsl:with-param name="s" select="../p:Name"/><xsl:with-param name="n" select="25"/></xsl:call-template>
    <xsl:text>*</xsl:text><xsl:value-of select="translate(a:City, 'abcdefghijklmnopqrstuvwxyzü', 'ABCDEFGHIJKLMNOPQRSTUVWXYZÜ')"/>
    <xsl:value-of select="concat('~', $nl)"/>
  </xsl:template>
  <xsl:template match="p:Line">
    <xsl:text>PO1*</xsl:text>
    <xsl:number format="001"/>
    <xsl:value-of select="concat('*', p:Qty, '*', p:Qty/@unit, '*', format-number(p:UnitPrice, '0.0000'), '**VP*')"/>
    <xsl:call-template name="pad"><xsl:with-param name="s" select="p:SKU"/><xsl:with-param name="n" select="10"/></xsl:call-template>
    <xsl:value-of select="concat('~', $nl)"/>
  </xsl:template>
  <xsl:template name="pad">
    <xsl:param name="s"/><xsl:param name="n"/>
    <xsl:value-of select="substring(concat($s, $spaces), 1, $n)"/>
  </xsl:template>
</xsl:stylesheet>
