// Package sqlurl reads the database URLs of pipelines' SQL sources and
// destinations.
package sqlurl

import (
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// MySQL reads mysql://user:pass@host:port/db?params into the driver's
// configuration: TCP to host:port (3306 by default), the database of the
// path, the query's parameters as the driver reads them in a DSN. Errors
// say what is wrong with the URL, never showing its password.
func MySQL(raw string) (*mysql.Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL: want mysql://user:pass@host:port/db")
	}
	host := u.Host
	if host == "" {
		return nil, errors.New("no host: want mysql://user:pass@host:port/db")
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "3306")
	}
	mc, err := mysql.ParseDSN("tcp(" + host + ")/?" + u.RawQuery)
	if err != nil {
		return nil, err
	}
	mc.DBName = strings.TrimPrefix(u.Path, "/")
	if u.User != nil {
		mc.User = u.User.Username()
		mc.Passwd, _ = u.User.Password()
	}
	return mc, nil
}
