package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// SchemaError lists every way the database differs from what this build
// expects, one problem a line, each naming its table (and column).
type SchemaError struct {
	Problems []string
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("schema does not match the code (%d problem(s)):\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// CheckSchema holds the database to the store's gorm models — every
// table exists, every field has a column of a compatible type (and length,
// and primary-key membership), every declared index exists (unique when
// declared so) — and reports pending migrations. It returns a *SchemaError
// listing every mismatch, or nil. extra models (other packages' tables) are
// checked too.
func (s *Store) CheckSchema(ctx context.Context, extra ...any) error {
	var problems []string
	status, err := s.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	for _, m := range status {
		if m.Pending() {
			problems = append(problems, fmt.Sprintf("migration %s is pending", m))
		}
	}
	db := s.db.WithContext(ctx)
	for _, model := range append(slices.Clone(storeModels), extra...) {
		p, err := checkModel(db, model)
		if err != nil {
			return err
		}
		problems = append(problems, p...)
	}
	if len(problems) > 0 {
		return &SchemaError{Problems: problems}
	}
	return nil
}

func checkModel(db *gorm.DB, model any) ([]string, error) {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(model); err != nil {
		return nil, fmt.Errorf("check schema: %T: %w", model, err)
	}
	sch, table := stmt.Schema, stmt.Schema.Table
	m := db.Migrator()
	if !m.HasTable(model) {
		return []string{fmt.Sprintf("table %s is missing", table)}, nil
	}
	cols, err := m.ColumnTypes(model)
	if err != nil {
		return nil, fmt.Errorf("check schema: columns of %s: %w", table, err)
	}
	byName := make(map[string]gorm.ColumnType, len(cols))
	for _, c := range cols {
		byName[strings.ToLower(c.Name())] = c
	}
	var problems []string
	for _, f := range sch.Fields {
		if f.DBName == "" || f.IgnoreMigration {
			continue
		}
		c, ok := byName[strings.ToLower(f.DBName)]
		if !ok {
			problems = append(problems, fmt.Sprintf("column %s.%s is missing (field %s.%s)", table, f.DBName, sch.Name, f.Name))
			continue
		}
		got := strings.ToLower(c.DatabaseTypeName())
		if want := typeFamily(string(f.DataType)); want != "" && typeFamily(got) != want {
			problems = append(problems, fmt.Sprintf("column %s.%s is %s, want a %s type for field %s.%s", table, f.DBName, got, want, sch.Name, f.Name))
		}
		if n, ok := c.Length(); ok && n > 0 && f.Size > 0 && n < int64(f.Size) {
			problems = append(problems, fmt.Sprintf("column %s.%s holds %d characters, field %s.%s wants %d", table, f.DBName, n, sch.Name, f.Name, f.Size))
		}
		if pk, ok := c.PrimaryKey(); ok && pk != f.PrimaryKey {
			want := "part of the primary key"
			if !f.PrimaryKey {
				want = "not part of the primary key"
			}
			problems = append(problems, fmt.Sprintf("column %s.%s should be %s", table, f.DBName, want))
		}
	}
	indexes, err := m.GetIndexes(model)
	if err != nil {
		return nil, fmt.Errorf("check schema: indexes of %s: %w", table, err)
	}
	for _, idx := range sch.ParseIndexes() {
		var cols []string
		for _, o := range idx.Fields {
			cols = append(cols, table+"."+o.DBName)
		}
		where := strings.Join(cols, ", ")
		if !m.HasIndex(model, idx.Name) {
			problems = append(problems, fmt.Sprintf("index %s on %s is missing", idx.Name, where))
			continue
		}
		if idx.Class != "UNIQUE" {
			continue
		}
		for _, got := range indexes {
			if got.Name() == idx.Name {
				if u, ok := got.Unique(); ok && !u {
					problems = append(problems, fmt.Sprintf("index %s on %s is not unique", idx.Name, where))
				}
			}
		}
	}
	return problems, nil
}

// typeFamily groups database type names (and gorm's abstract data types) by
// what Go values they hold, so "varchar" satisfies a string field; "" is a
// type it does not know, which is not checked.
func typeFamily(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	switch t {
	case string(schema.String), "text", "varchar", "character varying", "char", "character", "bpchar", "nvarchar", "clob", "citext", "json", "jsonb":
		return "text"
	case string(schema.Int), string(schema.Uint), "integer", "int2", "int4", "int8", "smallint", "bigint", "serial", "bigserial", "tinyint", "mediumint":
		return "integer"
	case string(schema.Float), "real", "float4", "float8", "double", "double precision", "numeric", "decimal":
		return "float"
	case string(schema.Bool), "boolean":
		return "boolean"
	case string(schema.Time), "timestamp", "timestamptz", "timestamp with time zone", "timestamp without time zone", "datetime", "date":
		return "time"
	case string(schema.Bytes), "bytea", "blob":
		return "binary"
	}
	return ""
}
