<?xml version="1.0"?>
<!-- Keys, decimal formats and properties named with prefixed QNames, resolved where the expression is written. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:t="http://www.w3.org/1999/XSL/Transform" xmlns:my="urn:sluice:my" xmlns:other="urn:sluice:other"
    xmlns:e="http://exslt.org/common" exclude-result-prefixes="my other t e">
  <xsl:output method="text"/>
  <xsl:key name="my:po" match="Item" use="@po"/>
  <xsl:key name="other:po" match="Item" use="@sku"/>
  <xsl:decimal-format name="my:eu" decimal-separator="," grouping-separator="."/>
  <xsl:template match="/">
    <xsl:value-of select="concat(count(key('my:po', 'PO-1001')), ' ', count(key('other:po', 'A-1')), ' ')"/>
    <xsl:value-of select="format-number(1234.5, '#.##0,00', 'my:eu')"/>
    <xsl:value-of select="concat(' ', system-property('t:version'), ' ', function-available('e:node-set'), ' ', element-available('t:choose'), ' ', function-available('my:nope'))"/>
    <xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
