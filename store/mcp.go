package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelplane/modelplane"
	"gorm.io/gorm"
)

type mcpServerRow struct {
	Name      string               `gorm:"primaryKey;size:200"`
	Version   string               `gorm:"primaryKey;size:63"`
	Doc       modelplane.MCPServer `gorm:"serializer:json"`
	CreatedAt time.Time
}

func (mcpServerRow) TableName() string { return "mcp_servers" }

type mcpChannelRow struct {
	Server    string `gorm:"primaryKey;size:200"`
	Channel   string `gorm:"primaryKey;size:63"`
	Version   string `gorm:"size:63"`
	Previous  string `gorm:"size:63"`
	UpdatedAt time.Time
}

func (mcpChannelRow) TableName() string { return "mcp_channels" }

// CreateMCPServer registers an MCP server version.
func (s *Store) CreateMCPServer(ctx context.Context, m modelplane.MCPServer) (modelplane.MCPServer, error) {
	now := time.Now().UTC()
	m.CreatedAt, m.UpdatedAt, m.Status = now, now, modelplane.MCPRegistered
	if err := s.db.WithContext(ctx).Create(&mcpServerRow{Name: m.Name, Version: m.Version, Doc: m, CreatedAt: now}).Error; err != nil {
		if isUniqueViolation(err) {
			return m, &modelplane.Error{Code: modelplane.EConflict, Field: "version", Message: fmt.Sprintf("MCP server %s version %s is already registered", m.Name, m.Version)}
		}
		return m, err
	}
	return m, nil
}

// GetMCPServer reads one MCP server version.
func (s *Store) GetMCPServer(ctx context.Context, name, version string) (modelplane.MCPServer, error) {
	var row mcpServerRow
	err := s.rdb.WithContext(ctx).First(&row, "name = ? AND version = ?", name, version).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return modelplane.MCPServer{}, modelplane.Errorf(modelplane.ENotFound, "MCP server %s version %s not found", name, version)
	}
	return row.Doc, err
}

// UpdateMCPServer applies fn to a stored MCP server version.
func (s *Store) UpdateMCPServer(ctx context.Context, name, version string, fn func(*modelplane.MCPServer)) (modelplane.MCPServer, error) {
	var out modelplane.MCPServer
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row mcpServerRow
		if err := tx.First(&row, "name = ? AND version = ?", name, version).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return modelplane.Errorf(modelplane.ENotFound, "MCP server %s version %s not found", name, version)
			}
			return err
		}
		fn(&row.Doc)
		row.Doc.UpdatedAt = time.Now().UTC()
		out = row.Doc
		return tx.Save(&row).Error
	})
	return out, err
}

// ListMCPServers lists versions, of one server when name is set.
func (s *Store) ListMCPServers(ctx context.Context, name string) ([]modelplane.MCPServer, error) {
	q := s.rdb.WithContext(ctx).Order("name, created_at")
	if name != "" {
		q = q.Where("name = ?", name)
	}
	var rows []mcpServerRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]modelplane.MCPServer, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Doc)
	}
	return out, nil
}

// GetChannel reads a channel; an unset channel has no version.
func (s *Store) GetChannel(ctx context.Context, server, channel string) (modelplane.MCPChannel, error) {
	var row mcpChannelRow
	err := s.rdb.WithContext(ctx).First(&row, "server = ? AND channel = ?", server, channel).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return modelplane.MCPChannel{Server: server, Channel: channel}, nil
	}
	return modelplane.MCPChannel{Server: row.Server, Channel: row.Channel, Version: row.Version, Previous: row.Previous, UpdatedAt: row.UpdatedAt}, err
}

// PutChannel points a channel at a version (idempotent).
func (s *Store) PutChannel(ctx context.Context, c modelplane.MCPChannel) error {
	return s.db.WithContext(ctx).Save(&mcpChannelRow{Server: c.Server, Channel: c.Channel, Version: c.Version, Previous: c.Previous, UpdatedAt: time.Now().UTC()}).Error
}

// ListChannels lists every channel.
func (s *Store) ListChannels(ctx context.Context) ([]modelplane.MCPChannel, error) {
	var rows []mcpChannelRow
	if err := s.rdb.WithContext(ctx).Order("server, channel").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]modelplane.MCPChannel, 0, len(rows))
	for _, r := range rows {
		out = append(out, modelplane.MCPChannel{Server: r.Server, Channel: r.Channel, Version: r.Version, Previous: r.Previous, UpdatedAt: r.UpdatedAt})
	}
	return out, nil
}
