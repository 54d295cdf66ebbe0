package readsql

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/auditstore/auditstore/internal/chconn"
	"github.com/auditstore/auditstore/schema"
)

// where returns the conditions every read of org's events under f has:
// the org, not expired, then f's conditions in a fixed order.
func where(b *builder, org string, f schema.Filter) []string {
	conds := []string{
		schema.ColOrgID + " = " + b.named("org", typeString, org),
		schema.NotExpired,
	}
	if !f.From.IsZero() {
		conds = append(conds, schema.ColTimestamp+" >= "+b.named("from", typeTime, chconn.Time(f.From)))
	}
	if !f.To.IsZero() {
		conds = append(conds, schema.ColTimestamp+" < "+b.named("to", typeTime, chconn.Time(f.To)))
	}
	for _, field := range schema.MatchFields {
		vs := f.Match[field]
		col, ok := field.Column()
		if len(vs) == 0 || !ok {
			continue
		}
		if field == schema.FieldActorEmail {
			// The skip index is on lower(actor_email): this condition lets
			// ClickHouse use it; the exact one below keeps the meaning.
			conds = append(conds, b.in("lower("+col+")", "emailLower", typeString, asciiLowerAll(vs)))
		}
		conds = append(conds, b.in(col, string(field), typeString, vs))
	}
	conds = append(conds, emailSearch(b, f)...)
	if c := ipMatch(b, f); c != "" {
		conds = append(conds, c)
	}
	for i, m := range f.Metadata {
		conds = append(conds, metadataMatch(b, i, m))
	}
	return append(conds, scopeConds(b, f)...)
}

// emailSearch returns the conditions of the search-box forms: a prefix or
// a substring of the ASCII-lowercased email (values come lowercased).
func emailSearch(b *builder, f schema.Filter) []string {
	col, _ := schema.FieldActorEmail.Column()
	var conds, or []string
	for _, p := range f.EmailPrefixes {
		or = append(or, "startsWith(lower("+col+"), "+b.param("emailPrefix", typeString, p)+")")
	}
	if c := orGroup(or); c != "" {
		conds = append(conds, c)
	}
	or = nil
	for _, s := range f.EmailContains {
		or = append(or, "position(lower("+col+"), "+b.param("emailContains", typeString, s)+") > 0")
	}
	if c := orGroup(or); c != "" {
		conds = append(conds, c)
	}
	return conds
}

// ipMatch matches exact addresses by their normal text (the stored form),
// and ranges by numeric bounds within the same address family.
func ipMatch(b *builder, f schema.Filter) string {
	col, _ := schema.FieldIPAddress.Column()
	var or []string
	if len(f.IPs) > 0 {
		vs := make([]string, len(f.IPs))
		for i, a := range f.IPs {
			vs[i] = a.String()
		}
		or = append(or, b.in(col, "ip", typeString, vs))
	}
	for _, p := range f.IPRanges {
		lo, hi := prefixBounds(p)
		if p.Addr().Is4() {
			or = append(or, fmt.Sprintf("(isIPv4String(%s) AND toIPv4OrZero(%s) BETWEEN %s AND %s)", col, col,
				b.param("ipLo", "IPv4", lo.String()), b.param("ipHi", "IPv4", hi.String())))
		} else {
			or = append(or, fmt.Sprintf("(isIPv6String(%s) AND toIPv6OrZero(%s) BETWEEN %s AND %s)", col, col,
				b.param("ipLo", "IPv6", lo.String()), b.param("ipHi", "IPv6", hi.String())))
		}
	}
	return orGroup(or)
}

// prefixBounds returns the first and last address of a masked prefix.
func prefixBounds(p netip.Prefix) (lo, hi netip.Addr) {
	lo = p.Masked().Addr()
	b := lo.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	hi, _ = netip.AddrFromSlice(b)
	return lo, hi
}

// jsonNumber is the grammar of a JSON number (RFC 8259).
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// metadataMatch compiles one metadata condition. The path elements are
// parameters too; JSONType keeps each kind of value to its own comparison.
// A path of up to schema.MetadataHashDepth keys is matched on the hashes
// the table keeps of those leaves (the same kinds and comparisons, hashed),
// so that the JSON is neither read nor parsed.
func metadataMatch(b *builder, i int, m schema.MetadataMatch) string {
	prefix := "md" + strconv.Itoa(i) + "_"
	args := schema.ColEventMetadata
	var nums []float64
	var bools []string
	for _, v := range m.Values {
		if jsonNumber.MatchString(v) {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				nums = append(nums, f)
			}
		}
		if v == "true" || v == "false" {
			bools = append(bools, v)
		}
	}
	if len(m.Path) <= schema.MetadataHashDepth {
		// The values are hashed here; the compiled text holds only the
		// parameter.
		var hs []string
		add := func(kind schema.MetadataKind, v string) {
			hs = append(hs, strconv.FormatUint(schema.MetadataLeafHash(kind, m.Path, v), 10))
		}
		for _, v := range m.Values {
			add(schema.KindString, v)
		}
		for _, f := range nums {
			add(schema.KindNumber, schema.MetadataNumber(f))
		}
		for _, v := range bools {
			add(schema.KindBool, schema.MetadataBool(v == "true"))
		}
		return "hasAny(" + schema.ColMetadataHashes + ", " + b.named(prefix+"h", "Array(UInt64)", "["+strings.Join(hs, ",")+"]") + ")"
	}
	for j, k := range m.Path {
		args += ", " + b.named(prefix+"k"+strconv.Itoa(j), typeString, k)
	}
	or := []string{"(JSONType(" + args + ") = 'String' AND " +
		b.in("JSONExtractString("+args+")", prefix+"s", typeString, m.Values) + ")"}
	if len(nums) > 0 {
		ns := make([]string, len(nums))
		for j, f := range nums {
			ns[j] = strconv.FormatFloat(f, 'g', -1, 64)
		}
		or = append(or, "(JSONType("+args+") IN ('Int64', 'UInt64', 'Double') AND "+
			b.in("JSONExtractFloat("+args+")", prefix+"n", "Float64", ns)+")")
	}
	if len(bools) > 0 {
		or = append(or, "(JSONType("+args+") = 'Bool' AND "+
			b.in("JSONExtractBool("+args+")", prefix+"b", "Bool", bools)+")")
	}
	cond := orGroup(or)
	if len(nums) > 0 {
		return cond
	}
	// Parsing JSON is the cost of a metadata filter. In a document without
	// a backslash, every string is written as it is, so a document that
	// contains none of the values cannot match: a plain substring search
	// rules it out first. (A number may be written many ways, so values
	// that read as numbers get no such shortcut.)
	needles := make([]string, 0, len(m.Values))
	for _, v := range m.Values {
		if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' }) {
			return cond
		}
		needles = append(needles, b.param(prefix+"p", typeString, v))
	}
	return "(position(" + schema.ColEventMetadata + ", '\\\\') > 0 OR multiSearchAny(" + schema.ColEventMetadata +
		", [" + strings.Join(needles, ", ") + "]))\n  AND " + cond
}

func orGroup(or []string) string {
	switch len(or) {
	case 0:
		return ""
	case 1:
		return or[0]
	default:
		return "(" + strings.Join(or, " OR ") + ")"
	}
}

func asciiLowerAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = asciiLower(v)
	}
	return out
}

// asciiLower lowercases the ASCII letters of s and leaves every other byte
// as it is: the case folding of ClickHouse's lower(), which the email
// search uses.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func joinWhere(conds []string) string {
	return "WHERE " + strings.Join(conds, "\n  AND ")
}

// keyset returns the condition "after pos in the order of keys".
func keyset(b *builder, keys []schema.SortKey, pos schema.Position) string {
	vals := make([]string, len(keys))
	for i, k := range keys {
		switch k.Column {
		case schema.ColTimestamp:
			vals[i] = b.named("afterTime", typeTime, chconn.Time(pos.Timestamp))
		case schema.ColID:
			vals[i] = b.named("afterID", "UUID", pos.ID.String())
		default:
			vals[i] = b.named("afterValue", typeString, pos.Value)
		}
	}
	// (k1 > v1 OR (k1 = v1 AND (k2 > v2 OR (k2 = v2 AND k3 > v3)))),
	// with < for descending keys; built from the last key outwards.
	cond := ""
	for i := len(keys) - 1; i >= 0; i-- {
		op := " > "
		if keys[i].Desc {
			op = " < "
		}
		c := keys[i].Column + op + vals[i]
		if cond != "" {
			c = "(" + c + " OR (" + keys[i].Column + " = " + vals[i] + " AND " + cond + "))"
		}
		cond = c
	}
	if keys[0].Column == schema.ColTimestamp {
		// The same bound on the order key alone lets ClickHouse skip
		// whole ranges of the primary index.
		op := " >= "
		if keys[0].Desc {
			op = " <= "
		}
		cond = keys[0].Column + op + vals[0] + "\n  AND " + cond
	}
	return cond
}

func orderBy(keys []schema.SortKey) string {
	terms := make([]string, len(keys))
	for i, k := range keys {
		dir := " ASC"
		if k.Desc {
			dir = " DESC"
		}
		terms[i] = k.Column + dir
	}
	return "ORDER BY " + strings.Join(terms, ", ")
}

// scopeConds returns the conditions of f's exclusions and fixed scope.
func scopeConds(b *builder, f schema.Filter) []string {
	var conds []string
	if len(f.ExcludeTypes) > 0 {
		col, _ := schema.FieldEventType.Column()
		ps := make([]string, len(f.ExcludeTypes))
		for i, t := range f.ExcludeTypes {
			ps[i] = b.param("excludeType", typeString, t)
		}
		conds = append(conds, col+" NOT IN ("+strings.Join(ps, ", ")+")")
	}
	for _, field := range schema.MatchFields {
		vs, ok := f.Scope[field]
		col, known := field.Column()
		if !ok || !known {
			continue
		}
		if len(vs) == 0 {
			conds = append(conds, "0") // a scope that allows nothing
			continue
		}
		conds = append(conds, b.in(col, "scope_"+string(field), typeString, vs))
	}
	return conds
}
