import { useEffect, useRef } from 'react';
import { ColorType, LineSeries, createChart, type IChartApi, type ISeriesApi, type UTCTimestamp } from 'lightweight-charts';

export interface Series {
  name: string;
  color: string;
  points: { time: number; value: number }[];
}

interface Props {
  series: Series[];
  height?: number;
  label: string;
}

/** A time chart (lightweight-charts) of one or more lines, dark, sized to its card; data are
 * replaced on every change (a few thousand points at most, cheap for the library). */
export function LineChart({ series, height = 180, label }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const lines = useRef<Map<string, ISeriesApi<'Line'>>>(new Map());

  useEffect(() => {
    if (!box.current) return;
    const c = createChart(box.current, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: 'transparent' }, textColor: '#9aa4b2' },
      grid: { vertLines: { color: '#1f2733' }, horzLines: { color: '#1f2733' } },
      timeScale: { timeVisible: true, secondsVisible: true },
      rightPriceScale: { borderColor: '#2a3340' },
    });
    chart.current = c;
    const map = lines.current;
    return () => {
      map.clear();
      chart.current = null;
      c.remove();
    };
  }, []);

  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    for (const s of series) {
      let line = lines.current.get(s.name);
      if (!line) {
        line = c.addSeries(LineSeries, { color: s.color, lineWidth: 2, title: s.name, priceLineVisible: false });
        lines.current.set(s.name, line);
      }
      line.setData(s.points.map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
    }
    c.timeScale().fitContent(); // the whole (bounded) history across the card
  }, [series]);

  // a fixed height: with autoSize the chart follows its box, which must not grow with it
  return (
    <div ref={box} className="chart" style={{ height }} role="img" aria-label={label} data-points={series.reduce((n, s) => n + s.points.length, 0)} />
  );
}
