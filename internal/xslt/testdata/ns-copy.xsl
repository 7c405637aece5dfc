<?xml version="1.0"?>
<!-- Namespaces through copy, copy-of, xsl:element and xsl:attribute. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:o="urn:acme:orders:2" xmlns:c="urn:acme:common" xmlns:keep="urn:sluice:keep">
  <xsl:template match="/">
    <out xmlns:extra="urn:extra">
      <xsl:copy-of select="//o:Routing"/>
      <xsl:apply-templates select="//o:Order"/>
      <xsl:element name="o:Summary" namespace="urn:acme:orders:2">
        <xsl:attribute name="c:count" namespace="urn:acme:common"><xsl:value-of select="count(//o:Order)"/></xsl:attribute>
        <xsl:element name="plain"/>
        <xsl:element name="{concat('k', 'eep')}:flag"/>
      </xsl:element>
      <keep:done/>
    </out>
  </xsl:template>
  <xsl:template match="o:Order">
    <xsl:copy>
      <xsl:copy-of select="@*"/>
      <xsl:for-each select="*"><xsl:copy><xsl:value-of select="."/></xsl:copy></xsl:for-each>
    </xsl:copy>
  </xsl:template>
</xsl:stylesheet>
