<?xml version="1.0"?>
<!-- Attribute sets, nested, overridden by literal attributes and xsl:attribute. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output indent="yes"/>
  <xsl:attribute-set name="audit">
    <xsl:attribute name="system">sluice</xsl:attribute>
    <xsl:attribute name="version">3</xsl:attribute>
  </xsl:attribute-set>
  <xsl:attribute-set name="money" use-attribute-sets="audit">
    <xsl:attribute name="currency">EUR</xsl:attribute>
    <xsl:attribute name="precision"><xsl:value-of select="2"/></xsl:attribute>
  </xsl:attribute-set>
  <xsl:attribute-set name="audit">
    <xsl:attribute name="version">4</xsl:attribute>
  </xsl:attribute-set>
  <xsl:template match="/Invoice">
    <doc xsl:use-attribute-sets="audit" version="override">
      <xsl:for-each select="Item">
        <xsl:element name="line" use-attribute-sets="money">
          <xsl:attribute name="currency">GBP</xsl:attribute>
          <xsl:value-of select="@sku"/>
        </xsl:element>
      </xsl:for-each>
      <xsl:apply-templates select="Payment"/>
    </doc>
  </xsl:template>
  <xsl:template match="Payment">
    <xsl:copy use-attribute-sets="money"><xsl:copy-of select="@*"/></xsl:copy>
  </xsl:template>
</xsl:stylesheet>
