<?xml version="1.0"?>
<!-- ASN restructured by purchase order (Muenchian grouping) and pallet. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output indent="yes"/>
  <xsl:key name="by-po" match="Item" use="@po"/>
  <xsl:key name="by-pallet" match="Item" use="@pallet"/>
  <xsl:key name="by-po-sku" match="Item" use="concat(@po, '|', @sku)"/>
  <xsl:template match="/ShipNotice">
    <asn id="{@id}" date="{@shipDate}" carrier="{Carrier/@scac}">
      <xsl:for-each select="Item[generate-id() = generate-id(key('by-po', @po)[1])]">
        <xsl:sort select="@po" order="descending"/>
        <order po="{@po}" lines="{count(key('by-po', @po))}" units="{sum(key('by-po', @po)/@qty)}">
          <xsl:for-each select="key('by-po', @po)[generate-id() = generate-id(key('by-po-sku', concat(@po, '|', @sku))[1])]">
            <item sku="{@sku}" qty="{sum(key('by-po-sku', concat(@po, '|', @sku))/@qty)}"/>
          </xsl:for-each>
        </order>
      </xsl:for-each>
      <pallets>
        <xsl:for-each select="Item[count(. | key('by-pallet', @pallet)[1]) = 1]">
          <pallet id="{@pallet}"><xsl:value-of select="count(key('by-pallet', @pallet))"/></pallet>
        </xsl:for-each>
      </pallets>
    </asn>
  </xsl:template>
</xsl:stylesheet>
