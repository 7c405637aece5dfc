<?xml version="1.0"?>
<!-- No xsl:output: an html root element selects the html method; a doctype is asked for. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output doctype-public="-//W3C//DTD HTML 4.01//EN" indent="no"/>
  <xsl:template match="/">
    <HTML><Head><META http-equiv="content-type" content="text/html"/></Head><BODY><P>Orders: <xsl:value-of select="count(//Order)"/></P><BR/><TD/></BODY></HTML>
  </xsl:template>
</xsl:stylesheet>
