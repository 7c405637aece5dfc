<?xml version="1.0"?>
<!-- A partner stylesheet importing a shared base, overriding some rules and calling apply-imports. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:import href="lib/base.xsl"/>
  <xsl:include href="lib/helpers.xsl"/>
  <xsl:variable name="who">partner</xsl:variable>
  <xsl:template match="/ShipNotice">
    <asn><xsl:apply-templates select="Carrier|Item"/><xsl:call-template name="stamp"/></asn>
  </xsl:template>
  <xsl:template match="Item[@qty &gt; 5]">
    <wrapped><xsl:apply-imports/></wrapped>
  </xsl:template>
  <xsl:template match="Carrier">
    <xsl:apply-imports/>
    <scac><xsl:call-template name="upper"><xsl:with-param name="s" select="'dhl freight'"/></xsl:call-template></scac>
  </xsl:template>
</xsl:stylesheet>
