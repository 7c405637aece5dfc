<?xml version="1.0"?>
<!-- Invoice rendered as an HTML e-mail body (html output method). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html"/>
  <xsl:template match="/Invoice">
    <html>
      <head><title>Invoice <xsl:value-of select="@number"/></title>
        <style>td.n { text-align: right } a &gt; b {}</style>
      </head>
      <body>
        <h1 class="title">Invoice <xsl:value-of select="@number"/> — <xsl:value-of select="Seller/Name"/></h1>
        <p>Issued <b><xsl:value-of select="@issued"/></b><br/>to <i><xsl:value-of select="Buyer/Name"/></i></p>
        <table border="1" summary="lines &amp; totals">
          <tr><th>SKU</th><th>Description</th><th>Net</th></tr>
          <xsl:for-each select="Item">
            <tr><td><a href="https://shop.example/p?sku={@sku}&amp;lang=fr ç"><xsl:value-of select="@sku"/></a></td>
              <td title="{normalize-space(.)}"><xsl:value-of select="normalize-space(.)"/></td>
              <td class="n"><xsl:value-of select="format-number(@qty * @price, '#,##0.00')"/></td></tr>
          </xsl:for-each>
          <tr><td colspan="2"></td><td></td></tr>
        </table>
        <form action="/pay?inv={@number}"><input type="checkbox" name="ok" checked="checked"/><select><option selected="selected" value="a&quot;b">x</option></select></form>
        <ul><li>one</li><li>two <span>2</span></li></ul>
        <div><hr/><img src="logo.png" alt="it's &quot;ok&quot;"/></div>
        <script type="text/javascript">if (a &lt; b &amp;&amp; c) { go(); }</script>
        <xsl:comment> end </xsl:comment>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
