package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditstore/auditstore/exporter/stream"
	"github.com/auditstore/auditstore/schema"
)

// Target is where and how a destination writes. Kind "s3" uses S3, "dir"
// uses Dir.
type Target struct {
	Kind string     `json:"kind"`
	S3   *S3Target  `json:"s3,omitempty"`
	Dir  *DirTarget `json:"dir,omitempty"`
	// Format is "parquet" (the columns of /v1/export) or "ocsf" (OCSF 1.1.0
	// API Activity, see ocsf.go). Default "parquet".
	Format string `json:"format,omitempty"`
	// Layout is "hive" (Partition below) or "security-lake" (Amazon
	// Security Lake's custom-source layout, SecurityLake below). Default
	// "hive".
	Layout string `json:"layout,omitempty"`
	// Partition is the hive layout's directory template: literal text and
	// {org}, {date} (YYYY-MM-DD), {day} (YYYYMMDD), {hour} (00-23).
	// Default "org_id={org}/event_date={date}/".
	Partition string `json:"partition,omitempty"`
	// SecurityLake names the custom source of the security-lake layout.
	SecurityLake *SecurityLake `json:"securityLake,omitempty"`
	// FileBytes is the size at which a file is closed (estimated from the
	// bytes per row of the destination's previous files). Default 256 MiB.
	FileBytes int64 `json:"fileBytes,omitempty"`
	// Every is the longest time between files while events arrive: a
	// duration from 5m to 24h. Default "15m".
	Every string `json:"every,omitempty"`
}

// S3Target is a bucket of any S3-compatible store (AWS S3, R2, GCS's
// interoperability endpoint, MinIO, ...).
type S3Target struct {
	// Endpoint is the store's base URL, e.g. https://s3.eu-west-1.amazonaws.com.
	Endpoint string `json:"endpoint"`
	Region   string `json:"region,omitempty"`
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix,omitempty"`
	// PathStyle addresses the bucket as endpoint/bucket/ (MinIO and most
	// self-hosted stores); false uses bucket.host/ (virtual-hosted).
	PathStyle bool `json:"pathStyle,omitempty"`
	// AccessKeyID and SecretAccessKey sign requests; both empty means the
	// ClickHouse server's own credentials (instance role, environment).
	AccessKeyID     string `json:"accessKeyId,omitempty"`
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
}

// DirTarget is a directory under the server's lake root (-lake-dir).
type DirTarget struct {
	Path string `json:"path"`
}

// SecurityLake is an Amazon Security Lake custom source.
type SecurityLake struct {
	Source    string `json:"source"`
	Region    string `json:"region"`
	AccountID string `json:"accountId"`
}

// Defaults.
const (
	defaultFileBytes = 256 << 20
	defaultEvery     = 15 * time.Minute
	maxEvery         = 24 * time.Hour
	defaultPartition = "org_id={org}/event_date={date}/"
	maxNameBytes     = 200
	maxFieldBytes    = 1024
)

var (
	// Characters that may appear in object keys and paths we build: no glob
	// or placeholder characters ClickHouse would interpret ({ } * ? [ ]).
	safePath    = regexp.MustCompile(`^[A-Za-z0-9._=/-]*$`)
	bucketName  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	slValue     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	accountID   = regexp.MustCompile(`^[0-9]{12}$`)
	templateTok = regexp.MustCompile(`\{[a-z]+\}`)
	hostPort    = regexp.MustCompile(`^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)
)

var templateTokens = map[string]bool{"{org}": true, "{date}": true, "{day}": true, "{hour}": true}

func invalid(field, msg string) error {
	return schema.Invalid("invalid_lake_destination", field+": "+msg,
		schema.FieldError{Index: -1, Field: field, Code: "invalid", Message: msg})
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameBytes || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("name", fmt.Sprintf("required, at most %d bytes of text without control characters", maxNameBytes))
	}
	return nil
}

// cleanRel checks a relative path made of safe segments (no "..", no
// empty segment) and returns it with one trailing slash ("" stays "").
func cleanRel(p, field string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if len(p) > maxFieldBytes || !safePath.MatchString(p) {
		return "", invalid(field, "only letters, digits and . _ = - / are allowed")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", invalid(field, "empty, '.' and '..' segments are not allowed")
		}
	}
	return p + "/", nil
}

// normalize validates t, fills in its defaults and returns it. Addresses
// are checked by checkAddress.
func (t Target) normalize(cfg Config) (Target, error) {
	switch t.Format {
	case "":
		t.Format = "parquet"
	case "parquet", "ocsf":
	default:
		return t, invalid("target.format", `must be "parquet" or "ocsf"`)
	}
	switch t.Kind {
	case "s3":
		if t.S3 == nil || t.Dir != nil {
			return t, invalid("target.s3", `kind "s3" takes an "s3" object (and no "dir")`)
		}
		s3 := *t.S3
		u, err := url.Parse(s3.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || len(s3.Endpoint) > maxFieldBytes {
			return t, invalid("target.s3.endpoint", "must be a base URL such as https://s3.eu-west-1.amazonaws.com (no path, no credentials)")
		}
		if !hostPort.MatchString(u.Host) {
			return t, invalid("target.s3.endpoint", "the host must be a name or an IP address (letters, digits, '.', '-', an optional :port)")
		}
		if u.Scheme == "http" && !cfg.AllowPrivate {
			return t, invalid("target.s3.endpoint", "must use https")
		}
		s3.Endpoint = u.Scheme + "://" + u.Host
		if !bucketName.MatchString(s3.Bucket) {
			return t, invalid("target.s3.bucket", "must be a valid bucket name (3-63 lowercase letters, digits, '.', '-')")
		}
		if s3.Region != "" && !slValue.MatchString(s3.Region) {
			return t, invalid("target.s3.region", "must be a region name such as eu-west-1")
		}
		if s3.Prefix, err = cleanRel(s3.Prefix, "target.s3.prefix"); err != nil {
			return t, err
		}
		if (s3.AccessKeyID == "") != (s3.SecretAccessKey == "") {
			return t, invalid("target.s3.accessKeyId", "give both accessKeyId and secretAccessKey, or neither (the ClickHouse server's own credentials)")
		}
		if len(s3.AccessKeyID) > maxFieldBytes || len(s3.SecretAccessKey) > maxFieldBytes ||
			strings.ContainsFunc(s3.AccessKeyID+s3.SecretAccessKey, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return t, invalid("target.s3.secretAccessKey", "credentials must be printable ASCII without spaces")
		}
		t.S3 = &s3
	case "dir":
		if t.Dir == nil || t.S3 != nil {
			return t, invalid("target.dir", `kind "dir" takes a "dir" object (and no "s3")`)
		}
		if cfg.DirRoot == "" {
			return t, invalid("target.kind", `"dir" destinations are disabled on this server (no -lake-dir)`)
		}
		p, err := cleanRel(t.Dir.Path, "target.dir.path")
		if err != nil {
			return t, err
		}
		t.Dir = &DirTarget{Path: p}
	default:
		return t, invalid("target.kind", `must be "s3" or "dir"`)
	}
	switch t.Layout {
	case "", "hive":
		t.Layout, t.SecurityLake = "hive", nil
		if t.Partition == "" {
			t.Partition = defaultPartition
		}
		p, err := cleanRel(templateTok.ReplaceAllString(t.Partition, "x"), "target.partition")
		if err != nil || p == "" {
			return t, invalid("target.partition", "a template of letters, digits, . _ = - / and {org}, {date}, {day}, {hour}")
		}
		timed := false
		for _, tok := range templateTok.FindAllString(t.Partition, -1) {
			if !templateTokens[tok] {
				return t, invalid("target.partition", fmt.Sprintf("unknown placeholder %s (want {org}, {date}, {day}, {hour})", tok))
			}
			timed = timed || tok != "{org}"
		}
		if !timed {
			// A partition's manifest lists all its files: without a time
			// in the path it would grow forever.
			return t, invalid("target.partition", "must hold {date}, {day} or {hour}, so that partitions (and their manifests) stay bounded")
		}
		t.Partition = strings.Trim(t.Partition, "/") + "/"
	case "security-lake":
		sl := t.SecurityLake
		if sl == nil || !slValue.MatchString(sl.Source) || !slValue.MatchString(sl.Region) || !accountID.MatchString(sl.AccountID) {
			return t, invalid("target.securityLake", "source (letters, digits, _ -), region and a 12-digit accountId are required")
		}
		t.Partition = ""
	default:
		return t, invalid("target.layout", `must be "hive" or "security-lake"`)
	}
	if t.FileBytes == 0 {
		t.FileBytes = defaultFileBytes
	}
	if t.FileBytes < 1<<20 || t.FileBytes > 4<<30 {
		return t, invalid("target.fileBytes", "must be between 1 MiB and 4 GiB")
	}
	every := defaultEvery
	if t.Every != "" {
		d, err := time.ParseDuration(t.Every)
		if err != nil || d < cfg.MinEvery || d > maxEvery {
			return t, invalid("target.every", fmt.Sprintf("must be a duration from %s to %s", cfg.MinEvery, maxEvery))
		}
		every = d
	}
	t.Every = every.String()
	return t, nil
}

// every returns the normalized interval.
func (t Target) every() time.Duration {
	d, _ := time.ParseDuration(t.Every)
	return d
}

// sameLocation reports whether a and b write to the same place.
func sameLocation(a, b Target) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == "dir" {
		return a.Dir.Path == b.Dir.Path
	}
	return a.S3.Endpoint == b.S3.Endpoint && a.S3.Bucket == b.S3.Bucket && a.S3.Prefix == b.S3.Prefix &&
		a.S3.PathStyle == b.S3.PathStyle && a.S3.Region == b.S3.Region
}

// checkAddress applies the address policy to an s3 endpoint.
func (s *Service) checkAddress(ctx context.Context, t Target) error {
	if t.Kind != "s3" {
		return nil
	}
	u, _ := url.Parse(t.S3.Endpoint)
	if err := stream.CheckHost(ctx, s.cfg.Resolver, u.Hostname(), s.cfg.AllowPrivate, u.Scheme == "http"); err != nil {
		return err
	}
	return nil
}

// secrets are the strings never to show or log.
func (t Target) secrets() []string {
	if t.S3 == nil {
		return nil
	}
	var out []string
	for _, v := range []string{t.S3.SecretAccessKey, t.S3.AccessKeyID} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// masked returns t as the API shows it: credentials hidden.
func (t Target) masked() Target {
	if t.S3 != nil {
		s3 := *t.S3
		if s3.AccessKeyID != "" {
			s3.AccessKeyID = mask(s3.AccessKeyID)
			s3.SecretAccessKey = "********"
		}
		t.S3 = &s3
	}
	return t
}

func mask(v string) string {
	if len(v) >= 16 {
		return "****" + v[len(v)-4:]
	}
	return "********"
}

// scrub removes secrets from a message.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "****")
	}
	return msg
}

func encodeTarget(t Target) []byte {
	b, _ := json.Marshal(t)
	return b
}
