package api

import (
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
)

// bodies maps the request schema names used in the route table to Go types.
var bodies = map[string]any{
	"Model":               modelplane.Model{},
	"Version":             versionRequest{},
	"Target":              modelplane.Target{},
	"PromotionRequest":    modelplane.PromotionRequest{},
	"ApprovalRequest":     ApprovalRequest{},
	"MetricsRequest":      MetricsRequest{},
	"RollbackRequest":     RollbackRequest{},
	"DecisionRequest":     DecisionRequest{},
	"DriftSignal":         modelplane.DriftSignal{},
	"SimHealth":           SimHealth{},
	"SimTraffic":          SimTraffic{},
	"Pipeline":            modelplane.Pipeline{},
	"RunRequest":          RunRequest{},
	"FreezeRequest":       FreezeRequest{},
	"ApplyRequest":        ApplyRequest{},
	"AlertmanagerWebhook": AlertmanagerWebhook{},
	"MCPServerRequest":    MCPServerRequest{},
	"MCPPromotionRequest": modelplane.MCPPromotionRequest{},
}

var paramRE = regexp.MustCompile(`:([a-z]+)`)

// OpenAPIPath turns an Echo path (/v1/models/:name) into OpenAPI form (/v1/models/{name}).
func OpenAPIPath(p string) string { return paramRE.ReplaceAllString(p, "{$1}") }

// OpenAPI builds the OpenAPI 3 document from the route table.
func OpenAPI() map[string]any {
	paths := map[string]any{}
	for _, r := range routes {
		op := map[string]any{"summary": r.summary, "operationId": strings.ToLower(r.method) + strings.ReplaceAll(OpenAPIPath(r.path), "/", "_")}
		var params []any
		for _, m := range paramRE.FindAllStringSubmatch(r.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, name := range r.query {
			params = append(params, map[string]any{"name": name, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if r.method == http.MethodPost && r.path == "/v1/promotions" {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.body != "" {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + r.body}}}}
		}
		resp := map[string]any{strconv.Itoa(r.status): map[string]any{"description": http.StatusText(r.status)}}
		errRef := map[string]any{"description": "error", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
		resp["default"] = errRef
		op["responses"] = resp
		if !r.public {
			op["security"] = []any{map[string]any{"bearer": []any{}}}
		}
		path := OpenAPIPath(r.path)
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		item[strings.ToLower(r.method)] = op
	}
	schemas := map[string]any{
		"Error": map[string]any{"type": "object", "properties": map[string]any{"error": map[string]any{"type": "object", "properties": map[string]any{
			"code": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}, "field": map[string]any{"type": "string"}}}}},
	}
	for name, v := range bodies {
		schemas[name] = schemaOf(reflect.TypeOf(v))
	}
	return map[string]any{
		"openapi":    "3.0.3",
		"info":       map[string]any{"title": "modelplane", "version": "v1", "description": "Model control plane: promotions as durable Temporal workflows."},
		"paths":      paths,
		"components": map[string]any{"schemas": schemas, "securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
	}
}

var durationType = reflect.TypeOf(modelplane.Duration(0))

func schemaOf(t reflect.Type) map[string]any {
	if t == durationType {
		return map[string]any{"type": "string", "example": "30s"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		if t.String() == "time.Time" {
			return map[string]any{"type": "string", "format": "date-time", "readOnly": true}
		}
		props := map[string]any{}
		addFields(t, props)
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			addFields(f.Type, props)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		props[name] = schemaOf(f.Type)
	}
}

func (s *Server) openapi(c echo.Context) error { return c.JSON(http.StatusOK, s.doc) }
