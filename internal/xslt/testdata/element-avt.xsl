<?xml version="1.0"?>
<!-- Computed element and attribute names, AVTs with braces, xsl:text and whitespace. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/Invoice">
    <xsl:element name="{translate(local-name(), 'I', 'i')}">
      <xsl:attribute name="{concat('n', 'um')}"><xsl:value-of select="@number"/></xsl:attribute>
      <xsl:for-each select="Item">
        <xsl:element name="line-{position()}">
          <xsl:attribute name="price-{@sku}">{<xsl:value-of select="@price"/>}</xsl:attribute>
          <literal braces="{{x}} {@qty}{@qty}" mixed="a{1+1}b{'}'}c"/>
        </xsl:element>
      </xsl:for-each>
      <t><xsl:text>  kept  </xsl:text>  <xsl:value-of select="'v'"/>
      </t>
      <sp xml:space="preserve">  <x/>  </sp>
      <nb>&#160;</nb>
    </xsl:element>
  </xsl:template>
</xsl:stylesheet>
