package sagemakertest

import (
	"fmt"
	"net/http"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// serveCBOR answers CloudWatch's Smithy RPC v2 CBOR protocol: the SDK posts
// a CBOR map to /service/GraniteServiceVersion20100801/operation/<Op>.
func (s *Server) serveCBOR(w http.ResponseWriter, op string, body []byte) {
	out, err := s.call(op, func() (any, *apiError) {
		if op != "GetMetricData" {
			return nil, &apiError{400, "UnknownOperationException", "the stand-in does not implement " + op}
		}
		return s.getMetricData(body)
	})
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if err != nil {
		w.Header().Set("X-Amzn-Query-Error", err.code+";"+map[bool]string{true: "Receiver", false: "Sender"}[err.status >= 500])
		w.WriteHeader(err.status)
		w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(err.code), "message": cbor.String(err.msg)}))
		return
	}
	w.Write(cbor.Encode(out.(cbor.Value)))
}

func (s *Server) getMetricData(body []byte) (any, *apiError) {
	v, err := cbor.Decode(body)
	if err != nil {
		return nil, &apiError{400, "SerializationException", err.Error()}
	}
	in, _ := v.(cbor.Map)
	queries, _ := in["MetricDataQueries"].(cbor.List)
	if len(queries) == 0 {
		return nil, &apiError{400, "InvalidParameterValue", "MetricDataQueries is required"}
	}
	end := time.Now()
	if t, err := cbor.AsTime(in["EndTime"]); err == nil {
		end = t
	}
	var results cbor.List
	for _, q := range queries {
		qm, _ := q.(cbor.Map)
		id := str(qm["Id"])
		stat, _ := qm["MetricStat"].(cbor.Map)
		metric, _ := stat["Metric"].(cbor.Map)
		if str(metric["Namespace"]) != "AWS/SageMaker" {
			return nil, &apiError{400, "InvalidParameterValue", fmt.Sprintf("the stand-in only serves AWS/SageMaker, not %q", str(metric["Namespace"]))}
		}
		dims := map[string]string{}
		dl, _ := metric["Dimensions"].(cbor.List)
		for _, d := range dl {
			dm, _ := d.(cbor.Map)
			dims[str(dm["Name"])] = str(dm["Value"])
		}
		value, ok := s.figure(dims["EndpointName"], dims["VariantName"], str(metric["MetricName"]), str(stat["Stat"]))
		r := cbor.Map{"Id": cbor.String(id), "Label": cbor.String(str(metric["MetricName"])), "StatusCode": cbor.String("Complete"),
			"Timestamps": cbor.List{}, "Values": cbor.List{}}
		if ok {
			r["Timestamps"] = cbor.List{cbor.Tag{ID: 1, Value: cbor.Float64(float64(end.Truncate(time.Minute).Unix()))}}
			r["Values"] = cbor.List{cbor.Float64(value)}
		}
		results = append(results, r)
	}
	return cbor.Value(cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}}), nil
}

func str(v cbor.Value) string {
	s, _ := v.(cbor.String)
	return string(s)
}

// figure is a variant's value for one metric and statistic; ok=false when
// the variant receives no requests (CloudWatch returns no datapoints).
func (s *Server) figure(endpoint, variant, metric, stat string) (float64, bool) {
	m, set := s.metrics[endpoint+"/"+variant]
	if !set {
		if !s.receives(endpoint, variant) {
			return 0, false
		}
		m = DefaultMetrics
	}
	if m.Invocations == 0 {
		return 0, false
	}
	switch {
	case metric == "Invocations" && stat == "Sum":
		return m.Invocations, true
	case metric == "Invocation5XXErrors" && stat == "Sum":
		return m.Errors5XX, true
	case metric == "ModelLatency" && stat == "p99":
		return m.LatencyP99Ms * 1000, true // microseconds, like SageMaker
	}
	return 0, false
}

// receives: a production variant with weight, or a shadow variant.
func (s *Server) receives(endpoint, variant string) bool {
	e := s.endpoints[endpoint]
	if e == nil || e.Status == "Creating" {
		return false
	}
	for _, v := range e.Variants {
		if v.Name == variant && v.Weight > 0 {
			return true
		}
	}
	for _, v := range e.Shadows {
		if v.Name == variant && v.Sampling > 0 {
			return true
		}
	}
	return false
}
