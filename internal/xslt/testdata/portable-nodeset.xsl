<?xml version="1.0"?>
<!-- A stylesheet written for MSXML and libxslt: node-set() chosen with function-available(). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:msxsl="urn:schemas-microsoft-com:xslt" xmlns:exsl="http://exslt.org/common"
    exclude-result-prefixes="msxsl exsl">
  <xsl:output indent="yes"/>
  <xsl:template match="/ShipNotice">
    <xsl:variable name="lines">
      <xsl:for-each select="Item"><l po="{@po}" qty="{@qty}"/></xsl:for-each>
    </xsl:variable>
    <summary>
      <xsl:choose>
        <xsl:when test="function-available('msxsl:node-set')">
          <total engine="msxml"><xsl:value-of select="sum(msxsl:node-set($lines)/l/@qty)"/></total>
        </xsl:when>
        <xsl:when test="function-available('exsl:node-set')">
          <total engine="exslt"><xsl:value-of select="sum(exsl:node-set($lines)/l/@qty)"/></total>
        </xsl:when>
        <xsl:otherwise><total engine="none"/></xsl:otherwise>
      </xsl:choose>
    </summary>
  </xsl:template>
</xsl:stylesheet>
