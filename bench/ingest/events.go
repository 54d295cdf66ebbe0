package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// Vocabularies of realistic audit events: the naming styles of the products
// the store replaces, several actor kinds, metadata of a few hundred bytes.
var (
	eventTypes = []string{
		"get-secrets", "create-secret", "update-secret", "delete-secret", "get-secret", "create-environment",
		"USER_LOGIN", "SESSION_STARTED", "SESSION_STOPPED", "RESOURCE_CREATED", "ROLE_UPDATED",
		"api_key.create", "api_key.update_status", "project.update", "team_member.add", "subscription.create",
		"execute", "approve", "sync", "dryrun",
	}
	// weights skew towards reads, as real audit logs do
	typeWeights = []int{30, 8, 6, 2, 20, 1, 12, 10, 8, 3, 1, 1, 1, 2, 1, 1, 4, 1, 3, 2}
	actorTypes  = []string{"user", "user", "user", "service", "identity", "apiKey"}
	uaTypes     = []string{"web", "cli", "k8-operator", "terraform", "node-sdk", "go-sdk"}
	envs        = []string{"dev", "staging", "prod"}
	resources   = []string{"secret", "project", "environment", "role", "api-key", "session", "integration"}
	agents      = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"infisical-cli/0.31.1 (linux; amd64)", "terraform-provider/1.9.4", "Go-http-client/1.1", "node-fetch/3.3",
	}
)

// generator makes deterministic streams of events for one bench run.
type generator struct {
	rnd   *rand.Rand
	total int
	now   time.Time
}

func newGenerator(seed uint64) *generator {
	return &generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: time.Now().UTC()}
}

func (g *generator) pick(xs []string) string { return xs[g.rnd.IntN(len(xs))] }

func (g *generator) eventType() string {
	sum := 0
	for _, w := range typeWeights {
		sum += w
	}
	n := g.rnd.IntN(sum)
	for i, w := range typeWeights {
		if n < w {
			return eventTypes[i]
		}
		n -= w
	}
	return eventTypes[0]
}

// event returns one wire-format event as JSON: every field a real producer
// fills, with an id (so retries are idempotent) and a timestamp within the
// last hour.
func (g *generator) event() map[string]any {
	g.total++
	actorType := g.pick(actorTypes)
	user := g.rnd.IntN(5000)
	actor := map[string]any{}
	switch actorType {
	case "user":
		actor = map[string]any{"userId": fmt.Sprintf("usr_%06d", user), "email": fmt.Sprintf("user%d@example-%d.com", user, user%40),
			"username": fmt.Sprintf("user%d", user), "permission": map[string]any{"metadata": map[string]any{}, "auth": map[string]any{"method": "sso"}}}
	case "service":
		actor = map[string]any{"serviceId": fmt.Sprintf("svc_%04d", user%300), "name": "deploy-bot"}
	case "identity":
		actor = map[string]any{"identityId": fmt.Sprintf("id_%05d", user%2000), "name": "k8s-operator"}
	case "apiKey":
		actor = map[string]any{"keyId": fmt.Sprintf("key_%05d", user%800)}
	}
	project := g.rnd.IntN(200)
	res := g.pick(resources)
	return map[string]any{
		"id":        uuid.NewString(),
		"timestamp": g.now.Add(-time.Duration(g.rnd.IntN(3600_000)) * time.Millisecond).Format(time.RFC3339Nano),
		"event": map[string]any{"type": g.eventType(), "metadata": map[string]any{
			"secretPath":      fmt.Sprintf("/apps/service-%d/config", g.rnd.IntN(50)),
			"environment":     g.pick(envs),
			"numberOfSecrets": g.rnd.IntN(120),
			"secretKeys":      []string{"DATABASE_URL", "REDIS_URL", fmt.Sprintf("API_TOKEN_%d", g.rnd.IntN(9))},
			"change":          map[string]any{"from": g.rnd.IntN(10), "to": g.rnd.IntN(10), "reason": "rotation policy"},
		}},
		"actor":         map[string]any{"type": actorType, "metadata": actor},
		"projectId":     fmt.Sprintf("prj_%04d", project),
		"projectName":   fmt.Sprintf("project-%d", project),
		"resource":      map[string]any{"type": res, "id": fmt.Sprintf("%s_%06d", res, g.rnd.IntN(100000)), "name": fmt.Sprintf("%s %d", res, g.rnd.IntN(1000))},
		"ipAddress":     fmt.Sprintf("10.%d.%d.%d", g.rnd.IntN(256), g.rnd.IntN(256), 1+g.rnd.IntN(254)),
		"userAgent":     g.pick(agents),
		"userAgentType": g.pick(uaTypes),
		"traceId":       uuid.NewString(),
	}
}

// body returns n events as one JSON array.
func (g *generator) body(n int) []byte {
	events := make([]map[string]any, n)
	for i := range events {
		events[i] = g.event()
	}
	b, err := json.Marshal(events)
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
	return b
}
