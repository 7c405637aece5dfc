<?xml version="1.0"?>
<!-- SOAP envelope with default and prefixed namespaces to a canonical order feed. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:o="urn:acme:orders:2"
    xmlns:c="urn:acme:common" xmlns="urn:sluice:feed" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    exclude-result-prefixes="env o c">
  <xsl:template match="/">
    <feed from="{//o:Routing/@from}" msg="{//o:Routing/@msgId}">
      <xsl:apply-templates select="env:Envelope/env:Body/o:OrderBatch/o:Order"/>
    </feed>
  </xsl:template>
  <xsl:template match="o:Order">
    <order id="{c:Id}" xsi:type="{@xsi:type}">
      <xsl:if test="@o:priority"><xsl:attribute name="rush">yes</xsl:attribute></xsl:if>
      <amount cur="{c:Amount/@currency}"><xsl:value-of select="c:Amount"/></amount>
      <xsl:copy-of select="*[local-name() = 'Extra']"/>
      <names><xsl:for-each select="* | @*"><n><xsl:value-of select="concat(name(), '=', local-name(), '@', namespace-uri())"/></n></xsl:for-each></names>
    </order>
  </xsl:template>
</xsl:stylesheet>
