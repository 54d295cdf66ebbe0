package gen

import (
	"math/rand/v2"
	"strconv"
)

// eventKind is one entry of the event catalog: how often it happens, what
// it acts on, and how its metadata looks.
type eventKind struct {
	typ      string
	weight   int
	resource string // resource type; "" for none
	meta     func(b []byte, rng *rand.Rand, env string) []byte
}

// catalog mixes the naming styles of the products auditstore replaces;
// reads dominate, as in real audit logs.
var catalog = []eventKind{
	{"get-secrets", 300, "secret", secretMeta},
	{"get-secret", 120, "secret", secretMeta},
	{"update-secret", 60, "secret", secretMeta},
	{"create-secret", 30, "secret", secretMeta},
	{"delete-secret", 8, "secret", secretMeta},
	{"integration.sync", 90, "integration", syncMeta},
	{"execute", 70, "workflow", execMeta},
	{"USER_LOGIN", 60, "", loginMeta},
	{"SESSION_STARTED", 40, "", loginMeta},
	{"LOGIN_FAILED", 6, "", loginMeta},
	{"api_key.create", 4, "api_key", keyMeta},
	{"api_key.revoke", 2, "api_key", keyMeta},
	{"project.update", 15, "project", projectMeta},
	{"member.invite", 5, "project", projectMeta},
	{"role.update", 4, "role", projectMeta},
	{"folder.create", 10, "folder", secretMeta},
	// an app's own audit-log page, in its own words: the store's records of
	// reads (audit-log.query, audit-log.export) are its own to write
	{"view-audit-logs", 8, "", queryMeta},
	{"export-audit-logs", 1, "", queryMeta},
}

var environments = []string{"prod", "prod", "staging", "dev"}

var secretKeys = []string{"DATABASE_URL", "REDIS_URL", "STRIPE_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"JWT_SIGNING_KEY", "SENTRY_DSN", "SMTP_PASSWORD", "GITHUB_TOKEN", "OPENAI_API_KEY", "SLACK_WEBHOOK", "ENCRYPTION_KEY"}

var services = []string{"billing", "checkout", "auth", "search", "notifications", "ledger", "gateway", "reports",
	"ingest", "scheduler", "mailer", "analytics"}

var userAgents = map[string][]string{
	"web": {"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"},
	"cli":         {"infisical-cli/0.31.1 (linux; amd64)", "infisical-cli/0.30.4 (darwin; arm64)"},
	"terraform":   {"Terraform/1.9.8 terraform-provider-infisical/0.12.3"},
	"k8-operator": {"secrets-operator/0.7.2 (kubernetes)"},
	"node-sdk":    {"infisical-node/3.0.5 node/22.11.0"},
	"go-sdk":      {"infisical-go/0.4.1 go1.23.3"},
	"other":       {"curl/8.10.1", "python-requests/2.32.3"},
}

// field appends "name": to a JSON object under construction.
func field(b []byte, name string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = strconv.AppendQuote(b, name)
	return append(b, ':')
}

func str(b []byte, name, v string) []byte { return strconv.AppendQuote(field(b, name), v) }

func num(b []byte, name string, v int) []byte { return strconv.AppendInt(field(b, name), int64(v), 10) }

func hexID(b []byte, rng *rand.Rand, n int) []byte {
	const digits = "0123456789abcdef"
	for range n {
		b = append(b, digits[rng.IntN(16)])
	}
	return b
}

func requestID(b []byte, rng *rand.Rand) []byte {
	b = append(field(b, "requestId"), '"')
	return append(hexID(b, rng, 32), '"')
}

func secretMeta(b []byte, rng *rand.Rand, env string) []byte {
	svc := services[rng.IntN(len(services))]
	b = str(b, "secretPath", "/apps/"+svc+"/config")
	b = str(b, "environment", env)
	b = str(b, "secretKey", secretKeys[rng.IntN(len(secretKeys))])
	b = num(b, "secretVersion", 1+rng.IntN(40))
	b = num(b, "numberOfSecrets", 1+rng.IntN(60))
	b = append(field(b, "secretKeys"), '[')
	for i := range 1 + rng.IntN(4) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, secretKeys[rng.IntN(len(secretKeys))])
	}
	b = append(b, ']')
	b = append(field(b, "client"), '{')
	b = str(b, "sdk", pickString(rng, []string{"node", "go", "python", "cli"}))
	b = str(b, "version", "3."+strconv.Itoa(rng.IntN(10))+"."+strconv.Itoa(rng.IntN(20)))
	b = append(b, '}')
	return requestID(b, rng)
}

func syncMeta(b []byte, rng *rand.Rand, env string) []byte {
	b = str(b, "integration", pickString(rng, []string{"aws-secrets-manager", "github", "vercel", "gcp-secret-manager", "azure-key-vault"}))
	b = str(b, "environment", env)
	b = num(b, "syncedSecrets", rng.IntN(200))
	b = num(b, "durationMs", 20+rng.IntN(5000))
	b = str(b, "status", pickString(rng, []string{"succeeded", "succeeded", "succeeded", "failed"}))
	b = str(b, "secretPath", "/apps/"+services[rng.IntN(len(services))]+"/config")
	return requestID(b, rng)
}

func execMeta(b []byte, rng *rand.Rand, env string) []byte {
	b = str(b, "workflow", "deploy-"+services[rng.IntN(len(services))])
	b = str(b, "environment", env)
	b = num(b, "step", rng.IntN(12))
	b = append(field(b, "dryRun"), strconv.FormatBool(rng.IntN(10) == 0)...)
	b = append(field(b, "inputs"), '{')
	b = str(b, "ref", "refs/heads/main")
	b = str(b, "commit", string(hexID(nil, rng, 40)))
	b = append(b, '}')
	return requestID(b, rng)
}

func loginMeta(b []byte, rng *rand.Rand, _ string) []byte {
	b = str(b, "authMethod", pickString(rng, []string{"email", "google", "github", "saml", "oidc"}))
	b = append(field(b, "mfa"), strconv.FormatBool(rng.IntN(3) > 0)...)
	b = str(b, "country", pickString(rng, []string{"US", "DE", "FR", "GB", "IN", "BR", "JP", "CA"}))
	b = num(b, "sessionTtlSeconds", 3600*(1+rng.IntN(24)))
	return requestID(b, rng)
}

func keyMeta(b []byte, rng *rand.Rand, _ string) []byte {
	b = str(b, "role", pickString(rng, []string{"ingest", "read", "admin"}))
	b = str(b, "name", "ci-"+services[rng.IntN(len(services))])
	b = num(b, "expiresInDays", 30*(1+rng.IntN(12)))
	return requestID(b, rng)
}

func projectMeta(b []byte, rng *rand.Rand, env string) []byte {
	b = str(b, "environment", env)
	b = str(b, "change", pickString(rng, []string{"name", "members", "settings", "role"}))
	b = append(field(b, "previous"), '{')
	b = num(b, "members", rng.IntN(50))
	b = str(b, "plan", pickString(rng, []string{"free", "pro", "enterprise"}))
	b = append(b, '}')
	return requestID(b, rng)
}

func queryMeta(b []byte, rng *rand.Rand, _ string) []byte {
	b = str(b, "endpoint", pickString(rng, []string{"GET /v1/events", "GET /v1/aggregates", "GET /v1/export"}))
	b = append(field(b, "params"), '{')
	b = str(b, "from", "2026-10-01T00:00:00Z")
	b = num(b, "limit", 50*(1+rng.IntN(4)))
	b = append(b, '}')
	return requestID(b, rng)
}

func pickString(rng *rand.Rand, s []string) string { return s[rng.IntN(len(s))] }
