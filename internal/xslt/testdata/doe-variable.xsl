<?xml version="1.0"?>
<!-- disable-output-escaping directly and through a variable (a pre-escaped HTML fragment passed through). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:variable name="banner"><div class="b"><xsl:text disable-output-escaping="yes">&lt;b&gt;Notice&lt;/b&gt;</xsl:text> &amp; terms</div></xsl:variable>
  <xsl:template match="/Invoice">
    <mail>
      <xsl:copy-of select="$banner"/>
      <plain><xsl:value-of select="$banner"/></plain>
      <attr note="{$banner}"/>
      <raw><xsl:value-of select="concat('&lt;i&gt;', Seller/Name, '&lt;/i&gt;')" disable-output-escaping="yes"/></raw>
    </mail>
  </xsl:template>
</xsl:stylesheet>
