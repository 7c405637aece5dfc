<?xml version="1.0"?>
<!-- format-number of prices: default and European decimal formats, patterns. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:decimal-format name="eu" decimal-separator="," grouping-separator="."/>
  <xsl:decimal-format name="odd" NaN="n/a" infinity="inf" minus-sign="~" percent="p" zero-digit="0"/>
  <xsl:template match="/">
    <xsl:for-each select="//Product/Price | //Product/Weight">
      <xsl:value-of select="concat(name(), ' ', ., ': ', format-number(., '#,##0.00'), ' | ', format-number(. * 1000, '#.###,00', 'eu'), ' | ', format-number(., '0.0#'), ' | ', format-number(-., '#,##0.00;(#,##0.00)'), ' | ', format-number(., '0%'), '&#10;')"/>
    </xsl:for-each>
    <xsl:for-each select="document-order-free">x</xsl:for-each>
    <xsl:value-of select="concat(format-number(1234567.891, '#,##0.###'), ' ', format-number(0.5, '#'), ' ', format-number(-0.4, '0'), ' ', format-number(2.5, '0'), ' ', format-number(0.125, '0.00'), ' ', format-number(1.005, '0.00'), '&#10;')"/>
    <xsl:value-of select="concat(format-number(number('x'), '0', 'odd'), ' ', format-number(1 div 0, '0', 'odd'), ' ', format-number(-7, '0', 'odd'), ' ', format-number(0.37, '00p', 'odd'), ' ', format-number(5, '000.0'), ' ', format-number(3.14159, '.00'), ' ', format-number(12, '#.##'), ' ', format-number(-1 div 0, '#'), '&#10;')"/>
    <xsl:value-of select="concat(format-number(99.999, '#,##0.00'), ' ', format-number(1000000000000000, '#,##0'), ' ', format-number(0.0001234, '0.000000'), ' ', format-number(42, '$#,##0.00 USD'), ' ', format-number(0.5, '‰0'), '&#10;')"/>
  </xsl:template>
</xsl:stylesheet>
