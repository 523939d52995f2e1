package xroad

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/magiconair/properties"
)

// DBSettings is one database's connection settings from db.properties.
type DBSettings struct {
	Path     string // the db.properties file
	JDBCURL  string
	Host     string
	Port     int
	Database string
	User     string
	Password string            `json:"-"`
	Schema   string            // hikari currentSchema, becomes search_path
	Params   map[string]string // libpq parameters taken from the JDBC URL (sslmode, ...)
}

// String describes the settings without the password.
func (d DBSettings) String() string {
	return fmt.Sprintf("postgres://%s@%s/%s", d.User, net.JoinHostPort(d.Host, strconv.Itoa(d.Port)), d.Database)
}

// ConnString is a libpq keyword/value connection string for pgx.
func (d DBSettings) ConnString() string {
	kv := []string{
		"host=" + quoteConn(d.Host), "port=" + strconv.Itoa(d.Port),
		"dbname=" + quoteConn(d.Database), "user=" + quoteConn(d.User),
	}
	if d.Password != "" {
		kv = append(kv, "password="+quoteConn(d.Password))
	}
	for _, k := range sortedKeys(d.Params) {
		kv = append(kv, k+"="+quoteConn(d.Params[k]))
	}
	if d.Schema != "" {
		kv = append(kv, "search_path="+quoteConn(d.Schema))
	}
	return strings.Join(kv, " ")
}

func quoteConn(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// ReadDBProperties reads the settings of database prefix ("serverconf" or "messagelog")
// from dir/db.properties.
func ReadDBProperties(dir, prefix string) (DBSettings, error) {
	path := filepath.Join(dir, "db.properties")
	b, err := ReadFile(path)
	if err != nil {
		return DBSettings{}, fmt.Errorf("%s: %w", path, err)
	}
	p, err := properties.LoadString(string(b))
	if err != nil {
		return DBSettings{}, fmt.Errorf("%s: %v", path, err)
	}
	key := func(k string) string { return prefix + ".hibernate." + k }
	d := DBSettings{Path: path}
	d.JDBCURL = strings.TrimSpace(p.GetString(key("connection.url"), ""))
	if d.JDBCURL == "" {
		return DBSettings{}, fmt.Errorf("%s: %s missing", path, key("connection.url"))
	}
	d.User = strings.TrimSpace(p.GetString(key("connection.username"), ""))
	if d.User == "" {
		return DBSettings{}, fmt.Errorf("%s: %s missing", path, key("connection.username"))
	}
	d.Password = p.GetString(key("connection.password"), "")
	d.Schema = strings.TrimSpace(p.GetString(key("hikari.dataSource.currentSchema"), ""))
	if err := d.parseJDBC(); err != nil {
		return DBSettings{}, fmt.Errorf("%s: %s = %q: %v", path, key("connection.url"), d.JDBCURL, err)
	}
	return d, nil
}

// jdbcParams maps PgJDBC URL parameters to libpq's; others are ignored.
var jdbcParams = map[string]string{
	"sslmode": "sslmode", "sslrootcert": "sslrootcert", "sslcert": "sslcert", "sslkey": "sslkey",
	"connectTimeout": "connect_timeout", "ApplicationName": "application_name",
	"applicationName": "application_name", "targetServerType": "target_session_attrs",
}

// parseJDBC understands jdbc:postgresql://host[:port]/database[?params].
func (d *DBSettings) parseJDBC() error {
	rest, ok := strings.CutPrefix(d.JDBCURL, "jdbc:postgresql:")
	if !ok {
		return fmt.Errorf("not a PostgreSQL JDBC URL (want jdbc:postgresql://host:port/database)")
	}
	if !strings.HasPrefix(rest, "//") {
		return fmt.Errorf("no host (want jdbc:postgresql://host:port/database)")
	}
	u, err := url.Parse("postgres:" + rest)
	if err != nil {
		return err
	}
	if strings.Contains(u.Host, ",") {
		return fmt.Errorf("several hosts are not supported")
	}
	d.Host, d.Port = u.Hostname(), 5432
	if d.Host == "" {
		d.Host = "localhost"
	}
	if ps := u.Port(); ps != "" {
		if d.Port, err = strconv.Atoi(ps); err != nil || d.Port <= 0 || d.Port > 65535 {
			return fmt.Errorf("bad port %q", ps)
		}
	}
	d.Database = strings.TrimPrefix(u.Path, "/")
	if d.Database == "" {
		return fmt.Errorf("no database name")
	}
	q := u.Query()
	d.Params = map[string]string{}
	for k, v := range q {
		if lk, ok := jdbcParams[k]; ok && len(v) > 0 {
			d.Params[lk] = v[0]
		}
		if k == "ssl" && len(v) > 0 && v[0] == "true" && q.Get("sslmode") == "" {
			d.Params["sslmode"] = "verify-full"
		}
		if k == "currentSchema" && len(v) > 0 && d.Schema == "" {
			d.Schema = v[0]
		}
	}
	return nil
}
