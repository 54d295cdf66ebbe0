package ingest

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/schema"
)

// quarantineRoutes registers the operator's quarantine endpoints (each node
// has its own quarantine, next to its write-ahead log).
func (p *Pipeline) quarantineRoutes(r gin.IRouter, require Guard) {
	r.GET("/v1/quarantine", require(schema.PermOperate), p.handleQuarantineList)
	r.POST("/v1/quarantine/:id/replay", require(schema.PermOperate), p.handleQuarantineReplay)
	r.DELETE("/v1/quarantine/:id", require(schema.PermOperate), p.handleQuarantineDiscard)
}

func (p *Pipeline) handleQuarantineList(c *gin.Context) {
	entries, err := p.QuarantineList()
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"node": p.cfg.NodeID, "entries": entries})
}

func (p *Pipeline) handleQuarantineReplay(c *gin.Context) {
	id := c.Param("id")
	n, err := p.ReplayQuarantine(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": id, "replayed": n})
}

func (p *Pipeline) handleQuarantineDiscard(c *gin.Context) {
	if err := p.DiscardQuarantine(c.Param("id")); err != nil {
		_ = c.Error(err)
		return
	}
	c.Status(http.StatusNoContent)
}
