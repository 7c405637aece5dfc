<?xml version="1.0"?>
<!-- Conflict resolution: explicit priority, default priorities, and the last of equals. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:template match="/"><xsl:apply-templates select="//*|//@*"/></xsl:template>
  <xsl:template match="*">[any <xsl:value-of select="name()"/>]</xsl:template>
  <xsl:template match="Item">[item]</xsl:template>
  <xsl:template match="Item[@qty &gt; 5]">[big item]</xsl:template>
  <xsl:template match="ShipNotice/Item[@pallet='P3']" priority="-1">[never unless]</xsl:template>
  <xsl:template match="Item[@po='PO-1003']">[po 1003 first]</xsl:template>
  <xsl:template match="Item[@po='PO-1003']">[po 1003 last]</xsl:template>
  <xsl:template match="Carrier" priority="10">[carrier]</xsl:template>
  <xsl:template match="node()" priority="5">[node <xsl:value-of select="local-name()"/>]</xsl:template>
  <xsl:template match="@*">(<xsl:value-of select="name()"/>)</xsl:template>
  <xsl:template match="@qty|@sku">(q/s)</xsl:template>
</xsl:stylesheet>
