package fio

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Row pairs the engine's figures for a workload with fio's on the same device.
type Row struct {
	Workload string
	Engine   Result
	Raw      Result
}

// IOPSRatio is engine IOPS / raw IOPS (0 when raw is 0).
func (r Row) IOPSRatio() float64 { return ratio(r.Engine.IOPS, r.Raw.IOPS) }

// BandwidthRatio is engine bytes/s / raw bytes/s (0 when raw is 0).
func (r Row) BandwidthRatio() float64 { return ratio(r.Engine.BytesPerSec, r.Raw.BytesPerSec) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteTable prints rows side by side: IOPS, MB/s and p50/p99 latency for the engine and for fio,
// and the engine/fio ratios.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tengine IOPS\tfio IOPS\tIOPS ratio\tengine MB/s\tfio MB/s\tMB/s ratio\tengine p50\tfio p50\tengine p99\tfio p99\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%.1f\t%.1f\t%.2f\t%v\t%v\t%v\t%v\t\n",
			r.Workload, r.Engine.IOPS, r.Raw.IOPS, r.IOPSRatio(),
			r.Engine.MBPerSec(), r.Raw.MBPerSec(), r.BandwidthRatio(),
			r.Engine.LatP50, r.Raw.LatP50, r.Engine.LatP99, r.Raw.LatP99)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("fio: write table: %w", err)
	}
	return nil
}
