<?xml version="1.0"?>
<!-- cdata-section-elements, doctype-public/system, escaping in attributes. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output doctype-public="-//SLUICE//DTD Order 1.0//EN" doctype-system="order.dtd" cdata-section-elements="script note" omit-xml-declaration="no"/>
  <xsl:template match="/">
    <order>
      <note><xsl:value-of select="//*[local-name()='Notes']"/></note>
      <script>if (a &lt; b &amp;&amp; c) { x = "]]&gt;"; }</script>
      <desc q="{//*[local-name()='Description'][1]}" tab="a&#9;b&#10;c&#13;" lt="&lt;&gt;&amp;'">é ü ∑ <xsl:value-of select="'&#x1F600;'"/></desc>
      <xsl:text disable-output-escaping="yes">&lt;raw&gt;&amp;amp;&lt;/raw&gt;</xsl:text>
      <xsl:value-of select="'&lt;also-raw/&gt;'" disable-output-escaping="yes"/>
    </order>
  </xsl:template>
</xsl:stylesheet>
