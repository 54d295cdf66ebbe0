package lake

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type ocsfAttr struct {
	Type        string    `json:"type"`
	Object      string    `json:"object"`
	Requirement string    `json:"requirement"`
	Profile     string    `json:"profile"`
	IsArray     bool      `json:"is_array"`
	Enum        []float64 `json:"enum"`
}

type ocsfObject struct {
	Attributes map[string]ocsfAttr `json:"attributes"`
	AtLeastOne []string            `json:"at_least_one"`
}

type ocsfDefinition struct {
	Version string `json:"ocsf_version"`
	Class   struct {
		UID        int                 `json:"uid"`
		Attributes map[string]ocsfAttr `json:"attributes"`
	} `json:"class"`
	Objects map[string]ocsfObject `json:"objects"`
}

func loadOCSF(tb testing.TB) ocsfDefinition {
	tb.Helper()
	b, err := os.ReadFile("testdata/ocsf-1.1.0-api_activity.json")
	if err != nil {
		tb.Fatal(err)
	}
	var d ocsfDefinition
	if err := json.Unmarshal(b, &d); err != nil {
		tb.Fatal(err)
	}
	if d.Version != OCSFVersion || d.Class.UID != 6003 {
		tb.Fatalf("definition of %s class %d, want %s 6003", d.Version, d.Class.UID, OCSFVersion)
	}
	return d
}

// validateOCSF checks one record against the definition: every attribute
// known, of its type, every required one present (those of a profile when
// the record applies it), every at_least_one satisfied.
func validateOCSF(d ocsfDefinition, rec map[string]any) []string {
	var profiles []string
	if md, ok := rec["metadata"].(map[string]any); ok {
		if ps, ok := md["profiles"].([]any); ok {
			for _, p := range ps {
				profiles = append(profiles, fmt.Sprint(p))
			}
		}
	}
	var errs []string
	var check func(path string, v map[string]any, obj ocsfObject)
	checkValue := func(path string, a ocsfAttr, v any) {
		switch a.Type {
		case "integer_t", "long_t", "timestamp_t":
			n, ok := v.(float64)
			if !ok || n != math.Trunc(n) {
				errs = append(errs, fmt.Sprintf("%s: %v is not an integer (%s)", path, v, a.Type))
				return
			}
			if a.Type == "integer_t" && (n > math.MaxInt32 || n < math.MinInt32) {
				errs = append(errs, fmt.Sprintf("%s: %v is out of integer_t", path, v))
			}
			if len(a.Enum) > 0 && !containsFloat(a.Enum, n) {
				errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", path, n, a.Enum))
			}
		case "string_t", "email_t", "ip_t":
			s, ok := v.(string)
			if !ok {
				errs = append(errs, fmt.Sprintf("%s: %v is not a string", path, v))
				return
			}
			if a.Type == "ip_t" {
				if _, err := netip.ParseAddr(s); err != nil {
					errs = append(errs, fmt.Sprintf("%s: %q is not an IP address", path, s))
				}
			}
			if a.Type == "email_t" && !strings.Contains(s, "@") {
				errs = append(errs, fmt.Sprintf("%s: %q is not an email address", path, s))
			}
		case "object":
			m, ok := v.(map[string]any)
			if !ok {
				errs = append(errs, fmt.Sprintf("%s: %T is not an object", path, v))
				return
			}
			if a.Object != "" {
				obj, known := d.Objects[a.Object]
				if !known {
					errs = append(errs, fmt.Sprintf("%s: object %s is not in the definition", path, a.Object))
					return
				}
				check(path, m, obj)
			}
		default:
			errs = append(errs, fmt.Sprintf("%s: unknown type %s", path, a.Type))
		}
	}
	check = func(path string, v map[string]any, obj ocsfObject) {
		for k, val := range v {
			a, ok := obj.Attributes[k]
			if !ok {
				errs = append(errs, fmt.Sprintf("%s%s: not an attribute of the definition", path, k))
				continue
			}
			if val == nil {
				continue // absent
			}
			if a.IsArray {
				arr, ok := val.([]any)
				if !ok {
					errs = append(errs, fmt.Sprintf("%s%s: want an array", path, k))
					continue
				}
				for i, e := range arr {
					checkValue(fmt.Sprintf("%s%s[%d]", path, k, i), a, e)
				}
				continue
			}
			checkValue(path+k, a, val)
		}
		for k, a := range obj.Attributes {
			if a.Requirement == "required" && (a.Profile == "" || containsString(profiles, a.Profile)) && v[k] == nil {
				errs = append(errs, fmt.Sprintf("%s%s: required", path, k))
			}
		}
		if len(obj.AtLeastOne) > 0 {
			found := false
			for _, k := range obj.AtLeastOne {
				found = found || v[k] != nil
			}
			if !found {
				errs = append(errs, fmt.Sprintf("%s: needs at least one of %v", strings.TrimSuffix(path, "."), obj.AtLeastOne))
			}
		}
	}
	// Objects nest with a dotted path.
	wrapped := check
	check = func(path string, v map[string]any, obj ocsfObject) {
		if path != "" && !strings.HasSuffix(path, ".") {
			path += "."
		}
		wrapped(path, v, obj)
	}
	check("", rec, ocsfObject{Attributes: d.Class.Attributes})
	return errs
}

func containsFloat(xs []float64, x float64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// mapAsObject turns a Parquet MAP read by arrow/go into a JSON object.
func mapAsObject(v any) map[string]any {
	switch m := v.(type) {
	case map[string]any:
		return m
	case []any:
		out := map[string]any{}
		for _, e := range m {
			kv := e.(map[string]any)
			out[fmt.Sprint(kv["key"])] = kv["value"]
		}
		return out
	}
	return nil
}

// OCSF output in the Amazon Security Lake layout: records valid against
// the class definition kept in testdata, mapped by the documented rules.
func TestOCSFSecurityLake(t *testing.T) {
	s3 := startS3(t)
	db := migrated(t)
	def := loadOCSF(t)
	h := newHarness(t, db, "node-a", nil)
	target := s3Target(s3, "")
	target["format"], target["layout"] = "ocsf", "security-lake"
	target["securityLake"] = map[string]any{"source": "auditstore", "region": "eu-west-1", "accountId": "123456789012"}
	h.mustCreate(t, "acme", map[string]any{"name": "security lake", "target": target})
	now := time.Now().UTC()
	evs := events("acme", 20, now, 2)
	h.insert(t, now, evs, true)
	root := filepath.Join(s3.dir, "lake")
	eventually(t, 60*time.Second, "20 records", func() bool { _, n := manifestFiles(t, root); return n == 20 })
	byID := map[string]int{}
	for i, e := range evs {
		byID[e.ID] = i
	}
	files, _ := manifestFiles(t, root)
	seen := 0
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		day := ""
		if _, err := fmt.Sscanf(strings.Split(rel, "/")[4], "eventDay=%s", &day); err != nil ||
			!strings.HasPrefix(rel, "ext/auditstore/region=eu-west-1/accountId=123456789012/eventDay=") {
			t.Fatalf("file %s is not in the Security Lake layout", rel)
		}
		b, _ := os.ReadFile(f)
		for _, rec := range readParquetJSON(t, b) {
			rec["unmapped"] = mapAsObject(rec["unmapped"])
			if errs := validateOCSF(def, rec); len(errs) > 0 {
				j, _ := json.Marshal(rec)
				t.Fatalf("invalid OCSF record: %v\n%s", errs, j)
			}
			if seen == 0 {
				j, _ := json.Marshal(rec)
				t.Logf("%s: %s", rel, j)
			}
			md := rec["metadata"].(map[string]any)
			i, ok := byID[md["uid"].(string)]
			if !ok {
				t.Fatalf("unknown event %v", md["uid"])
			}
			seen++
			e := evs[i]
			wantAct := map[string]float64{"create-secret": 1, "secret.read": 2, "update-project": 3, "api_key.delete": 4, "USER_LOGIN": 99}[e.Event.Type]
			um := rec["unmapped"].(map[string]any)
			api := rec["api"].(map[string]any)
			src := rec["src_endpoint"].(map[string]any)
			user := rec["actor"].(map[string]any)["user"].(map[string]any)
			switch {
			case rec["activity_id"] != wantAct || rec["type_uid"] != 600300+wantAct:
				t.Fatalf("%s: activity_id %v type_uid %v, want %v", e.Event.Type, rec["activity_id"], rec["type_uid"], wantAct)
			case rec["time"] != float64(e.Timestamp.UnixMilli()) || time.UnixMilli(int64(rec["time"].(float64))).UTC().Format("20060102") != day:
				t.Fatalf("time %v, want %d in day %s", rec["time"], e.Timestamp.UnixMilli(), day)
			case api["operation"] != e.Event.Type || md["tenant_uid"] != "acme" || md["version"] != "1.1.0":
				t.Fatalf("api %v metadata %v", api, md)
			case user["uid"] != e.Actor.Identity().ID || user["type_id"] != float64(1):
				t.Fatalf("actor.user %v", user)
			case e.IPAddress != "" && src["ip"] != e.IPAddress, e.IPAddress == "" && src["ip"] != nil:
				t.Fatalf("src_endpoint %v, want ip %q", src, e.IPAddress)
			case rec["http_request"].(map[string]any)["user_agent"] != e.UserAgent:
				t.Fatalf("http_request %v", rec["http_request"])
			case um["id"] != e.ID || um["eventType"] != e.Event.Type || um["orgId"] != "acme":
				t.Fatalf("unmapped %v", um)
			case rec["cloud"].(map[string]any)["region"] != "eu-west-1":
				t.Fatalf("cloud %v", rec["cloud"])
			}
			res := rec["resources"].([]any)
			if (e.Resource == nil) != (len(res) == 0) {
				t.Fatalf("resources %v for resource %v", res, e.Resource)
			}
			if e.Resource != nil && res[0].(map[string]any)["uid"] != e.Resource.ID {
				t.Fatalf("resources %v", res)
			}
		}
	}
	if seen != 20 {
		t.Fatalf("records=%d, want 20", seen)
	}
}

// The validator itself rejects what it should.
func TestOCSFValidatorRejects(t *testing.T) {
	d := loadOCSF(t)
	base := func() map[string]any {
		return map[string]any{"activity_id": 1.0, "category_uid": 6.0, "class_uid": 6003.0, "severity_id": 1.0,
			"time": 1.0, "type_uid": 600301.0,
			"metadata": map[string]any{"version": "1.1.0", "product": map[string]any{"vendor_name": "x"}},
			"actor":    map[string]any{"user": map[string]any{"uid": "u"}}, "api": map[string]any{"operation": "x"},
			"src_endpoint": map[string]any{"ip": "192.0.2.1"}}
	}
	if errs := validateOCSF(d, base()); len(errs) != 0 {
		t.Fatalf("a valid record: %v", errs)
	}
	for name, mutate := range map[string]func(map[string]any){
		"missing api":       func(r map[string]any) { delete(r, "api") },
		"string time":       func(r map[string]any) { r["time"] = "now" },
		"unknown attribute": func(r map[string]any) { r["color"] = "red" },
		"bad ip":            func(r map[string]any) { r["src_endpoint"] = map[string]any{"ip": "nope"} },
		"empty endpoint":    func(r map[string]any) { r["src_endpoint"] = map[string]any{} },
		"bad class":         func(r map[string]any) { r["class_uid"] = 3002.0 },
		"no vendor": func(r map[string]any) {
			r["metadata"] = map[string]any{"version": "1.1.0", "product": map[string]any{}}
		},
		"cloud profile":      func(r map[string]any) { r["metadata"].(map[string]any)["profiles"] = []any{"cloud"} },
		"user without names": func(r map[string]any) { r["actor"] = map[string]any{"user": map[string]any{"type": "User"}} },
	} {
		r := base()
		mutate(r)
		if errs := validateOCSF(d, r); len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}
