import { describe, expect, it, vi } from 'vitest';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Login } from './Login';
import { RiskPanel } from './RiskPanel';
import { Trades } from './Trades';
import { Opportunities } from './Opportunities';
import { Balances } from './Balances';
import { Venues } from './Venues';
import type { Risk, Trade } from '../types';

describe('Login', () => {
  it('sends the trimmed username and the password', async () => {
    const onLogin = vi.fn(async () => {});
    render(<Login onLogin={onLogin} />);
    await userEvent.type(screen.getByLabelText('Username'), ' ann ');
    await userEvent.type(screen.getByLabelText('Password'), 's3cret pw');
    await userEvent.click(screen.getByRole('button', { name: 'Log in' }));
    expect(onLogin).toHaveBeenCalledWith('ann', 's3cret pw');
  });

  it("shows the server's refusal and lets the user try again", async () => {
    const onLogin = vi.fn(async () => {
      throw new Error('wrong username or password');
    });
    render(<Login onLogin={onLogin} />);
    await userEvent.type(screen.getByLabelText('Username'), 'ann');
    await userEvent.type(screen.getByLabelText('Password'), 'x');
    await userEvent.click(screen.getByRole('button', { name: 'Log in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('wrong username or password');
    expect(screen.getByRole('button', { name: 'Log in' })).toBeEnabled();
  });

  it('cannot be submitted empty', () => {
    render(<Login onLogin={async () => {}} />);
    expect(screen.getByRole('button', { name: 'Log in' })).toBeDisabled();
  });
});

const risk: Risk = { killed: false, breakers: [{ name: 'daily_loss', state: 'closed' }, { name: 'failed_legs', state: 'open', reason: '3 in 60 s' }] };

describe('RiskPanel', () => {
  it('lets an admin kill after a confirmation', async () => {
    const onKill = vi.fn(async () => {});
    render(<RiskPanel risk={risk} role="admin" onKill={onKill} onResume={async () => {}} />);
    expect(screen.getByTestId('kill-state')).toHaveTextContent('armed');
    const breakers = screen.getByRole('list', { name: 'breakers' });
    expect(within(breakers).getAllByRole('listitem').map((li) => li.textContent)).toEqual(['closed daily_loss', 'open failed_legs — 3 in 60 s']);
    await userEvent.click(screen.getByRole('button', { name: 'Kill switch' }));
    expect(onKill).not.toHaveBeenCalled();
    await userEvent.click(screen.getByRole('button', { name: 'Confirm kill' }));
    expect(onKill).toHaveBeenCalledOnce();
  });

  it('offers resume when killed and shows a refusal', async () => {
    const onResume = vi.fn(async () => {
      throw new Error('admin role required');
    });
    render(<RiskPanel risk={{ ...risk, killed: true, kill_reason: 'operator' }} role="admin" onKill={async () => {}} onResume={onResume} />);
    expect(screen.getByTestId('kill-state')).toHaveTextContent('KILLED');
    await userEvent.click(screen.getByRole('button', { name: 'Resume trading' }));
    expect(onResume).toHaveBeenCalledOnce();
    expect(await screen.findByRole('alert')).toHaveTextContent('admin role required');
  });

  it('says when the kill switch state is unknown', () => {
    render(<RiskPanel risk={{ killed: null, breakers: [] }} role="admin" onKill={async () => {}} onResume={async () => {}} />);
    expect(screen.getByTestId('kill-state')).toHaveTextContent('unknown (no engine here)');
  });

  it('gives a viewer no kill or resume button', () => {
    render(<RiskPanel risk={{ ...risk, killed: true }} role="viewer" onKill={async () => {}} onResume={async () => {}} />);
    expect(screen.queryByRole('button')).toBeNull();
    expect(screen.getByText(/read-only/)).toBeInTheDocument();
  });
});

describe('Trades', () => {
  const rows: Trade[] = [
    { id: 2, group: 'ETH/USDT', status: 'open', expected_pnl: '1.00', realized_pnl: '0', created_ns: 2e18, closed_ns: null },
    { id: 1, group: 'BTC/USDT', status: 'done', expected_pnl: '2.50', realized_pnl: '1.75', fees_quote: '0.4', created_ns: 1e18, closed_ns: 1.1e18 },
  ];

  it('shows expected next to realised PnL and their difference, settled trades only in the totals', () => {
    render(<Trades rows={rows} />);
    const [open, done] = screen.getAllByTestId('trade');
    expect([...done.querySelectorAll('td')].map((td) => td.textContent)).toEqual(['01:46:40', '1', 'BTC/USDT', 'done', '+2.50', '+1.75', '-0.75', '0.40']);
    expect([...open.querySelectorAll('td')].map((td) => td.textContent).slice(4, 7)).toEqual(['+1.00', '…', '-']);
    expect(screen.getByText(/settled 1:/)).toHaveTextContent('settled 1: expected +2.50 · realised +1.75');
  });
});

describe('Opportunities', () => {
  it('shows the venues of both legs and the expected profit', () => {
    render(
      <Opportunities
        rows={[{ id: 3, group: 'BTC/USDT', buy_key: 'kraken BTC/USDT', sell_key: 'binance BTC/USDT', qty_base: 0.05, profit_bps: 4.26, profit_quote: '2.1', local_ns: 0 }]}
      />,
    );
    const row = screen.getByTestId('opportunity');
    expect([...row.querySelectorAll('td')].map((td) => td.textContent)).toEqual(['-', 'BTC/USDT', 'kraken → binance', '0.0500', '4.3', '+2.10']);
  });

  it('says when there are none', () => {
    render(<Opportunities rows={[]} />);
    expect(screen.getByText('None yet.')).toBeInTheDocument();
  });
});

describe('Balances and venues', () => {
  it('lays balances out as venue rows and asset columns, with the exposure', () => {
    render(
      <Balances
        rows={[
          { venue: 'okx', asset: 'USDT', amount: '50000' },
          { venue: 'binance', asset: 'BTC', amount: '1.5' },
        ]}
        exposure={{ max_unhedged_quote: 120.5 }}
      />,
    );
    const table = screen.getByRole('table', { name: 'balances' });
    expect([...table.querySelectorAll('tr')].map((tr) => tr.textContent)).toEqual(['venueBTCUSDT', 'binance1.5000-', 'okx-50,000.0000']);
    expect(screen.getByRole('definition')).toHaveTextContent('120.50');
  });

  it('marks a stale venue', () => {
    render(<Venues rows={[{ venue: 'okx', state: 'live', path: 'native', book_age_ms: 12, messages_per_s: 40.2, resyncs: 1 }, { venue: 'kraken', state: 'stale' }]} />);
    expect(screen.getByText('live')).toHaveClass('ok');
    expect(screen.getByText('stale')).toHaveClass('bad');
  });
});
