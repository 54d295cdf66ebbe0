package stream

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Azure Monitor (Microsoft Sentinel): the Logs Ingestion API ("Logs
// Ingestion API in Azure Monitor", https://learn.microsoft.com/azure/
// azure-monitor/logs/logs-ingestion-api-overview), authenticated with the
// OAuth 2.0 client credentials flow of the Microsoft identity platform
// (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
//
//	POST https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token
//	  client_id=..&client_secret=..&grant_type=client_credentials&scope=https://monitor.azure.com//.default
//	  → {"token_type":"Bearer","expires_in":3599,"access_token":"..."}   (cached until shortly before expiry)
//	POST <data collection endpoint>/dataCollectionRules/<DCR immutable id>/streams/Custom-<table>_CL?api-version=2023-01-01
//	Authorization: Bearer <token>, Content-Type: application/json, Content-Encoding: gzip
//	[{"TimeGenerated": "2025-01-01T00:00:00.000Z", <record>}, ...]
//
// TimeGenerated is the event's time. Azure Monitor's service limits for
// this API: 1 MB per call (compressed or not), 64 KB per field (longer
// values are truncated by Azure); throttling answers 429 with Retry-After.
// Success is 204 No Content. A 401 drops the cached token and retries once.
type azureConfig struct {
	TenantID     string `json:"tenantId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	// DCEURL is the data collection endpoint's logs ingestion URL, e.g.
	// https://my-dce-abcd.eastus-1.ingest.monitor.azure.com.
	DCEURL string `json:"dceUrl"`
	// DCRImmutableID is the data collection rule's immutable id, dcr-<32 hex>.
	DCRImmutableID string `json:"dcrImmutableId"`
	// TableName is the custom table, e.g. AuditLogs_CL ("_CL" is added
	// when missing); the DCR stream is Custom-<TableName>.
	TableName string `json:"tableName"`
}

var (
	azureTenant = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$`) // a GUID or a domain
	azureClient = regexp.MustCompile(`^[A-Za-z0-9-]{1,100}$`)
	azureDCR    = regexp.MustCompile(`^dcr-[0-9a-fA-F]{32}$`)
	azureTable  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,59}_CL$`)
)

// azureScope is the audience of Logs Ingestion API tokens (Azure public
// cloud), in the form Microsoft's REST tutorial uses.
const azureScope = "https://monitor.azure.com//.default"

func (c *azureConfig) check(ctx context.Context, g guard) error {
	if !azureTenant.MatchString(c.TenantID) {
		return fieldError("tenantId", "invalid", "must be the directory (tenant) id, a GUID or a domain")
	}
	if !azureClient.MatchString(c.ClientID) {
		return fieldError("clientId", "invalid", "must be the application (client) id, a GUID")
	}
	if err := checkSecret("clientSecret", c.ClientSecret); err != nil {
		return err
	}
	u, err := g.checkURL(ctx, strings.TrimSpace(c.DCEURL), "dceUrl")
	if err != nil {
		return err
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return fieldError("dceUrl", "url", "must be the data collection endpoint's root URL, without a path")
	}
	c.DCEURL = u.Scheme + "://" + u.Host
	if !azureDCR.MatchString(c.DCRImmutableID) {
		return fieldError("dcrImmutableId", "invalid", "must be the data collection rule's immutable id, dcr- and 32 hex digits")
	}
	t := strings.TrimPrefix(strings.TrimSpace(c.TableName), "Custom-")
	if !strings.HasSuffix(t, "_CL") {
		t += "_CL"
	}
	if !azureTable.MatchString(t) {
		return fieldError("tableName", "invalid", "must be a custom table name: a letter, then letters, digits or '_' (the _CL suffix is added)")
	}
	c.TableName = t
	return nil
}

func (c *azureConfig) masked() any {
	m := *c
	m.ClientSecret = mask(c.ClientSecret)
	return m
}

func (c *azureConfig) keepSecrets(old destConfig) {
	if o, ok := old.(*azureConfig); ok {
		c.ClientSecret = keep(c.ClientSecret, o.ClientSecret)
	}
}

func (c *azureConfig) secrets() []string { return []string{c.ClientSecret} }

// target: the tenant (whose login service receives the client secret) and
// the data collection endpoint (which receives the tokens).
func (c *azureConfig) target() (string, []string) {
	return c.TenantID + " " + c.DCEURL, []string{"clientSecret"}
}

func (c *azureConfig) open(e *env) provider {
	ingest := strings.TrimRight(c.DCEURL, "/") + "/dataCollectionRules/" + url.PathEscape(c.DCRImmutableID) +
		"/streams/" + url.PathEscape("Custom-"+c.TableName) + "?api-version=2023-01-01"
	tok := &tokenSource{env: e, url: strings.TrimRight(e.azureLoginURL, "/") + "/" + url.PathEscape(c.TenantID) + "/oauth2/v2.0/token",
		form: url.Values{"client_id": {c.ClientID}, "client_secret": {c.ClientSecret},
			"grant_type": {"client_credentials"}, "scope": {azureScope}}}
	return &azure{url: ingest, tokens: tok}
}

type azure struct {
	url    string
	tokens *tokenSource
}

func (a *azure) wire() wire {
	return wire{maxEvents: 1000, maxBytes: 1_000_000, maxItem: 1_000_000, open: "[", sep: ",", close: "]", gzip: true}
}

func (a *azure) element(buf []byte, r *row, rec *record) []byte {
	p := append([]byte(`"TimeGenerated":`), '"')
	p = append(p, jsonTime(r.ts)...)
	p = append(p, '"', ',')
	return spliceFields(buf, p, rec)
}

func (a *azure) request(ctx context.Context, body []byte) (*http.Request, error) {
	token, err := a.tokens.get(ctx)
	if err != nil {
		return nil, err
	}
	req, err := post(ctx, a.url, body, true, "application/json")
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

func (a *azure) unauthorized() bool {
	a.tokens.drop()
	return true
}
