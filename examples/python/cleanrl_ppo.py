"""PPO in one file, CleanRL style, on envs that run in rlmesh worker processes.

    uv run python examples/python/cleanrl_ppo.py --env-id CartPole-v1 --num-envs 8

``rlmesh.make_vec`` starts local server processes and returns a Gymnasium vector env; the
training loop below is ordinary PPO (a discrete-action actor-critic, GAE, clipped
surrogate) written against the Gymnasium vector API, so the same loop drives
``rlmesh.numpy.RemoteVectorEnv([...addresses...])`` on other machines. Needs PyTorch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

import rlmesh


def layer(n_in: int, n_out: int, gain: float = 2**0.5) -> nn.Linear:
    linear = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(linear.weight, gain)
    nn.init.zeros_(linear.bias)
    return linear


class Agent(nn.Module):
    def __init__(self, n_obs: int, n_actions: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(layer(n_obs, 64), nn.Tanh(), layer(64, 64), nn.Tanh(),
                                    layer(64, 1, gain=1.0))
        self.actor = nn.Sequential(layer(n_obs, 64), nn.Tanh(), layer(64, 64), nn.Tanh(),
                                   layer(64, n_actions, gain=0.01))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def act(self, obs: torch.Tensor, action: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        dist = Categorical(logits=self.actor(obs))
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.value(obs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=128, help="steps per env per update")
    parser.add_argument("--total-timesteps", type=int, default=100_000)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--gae-lambda", type=float, default=0.95)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--minibatches", type=int, default=4)
    parser.add_argument("--clip", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    envs = rlmesh.make_vec(args.env_id, args.num_envs)
    n_obs = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(n_obs, int(envs.single_action_space.n))
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)
    shape = (args.num_steps, args.num_envs)
    obs_buf = torch.zeros((*shape, n_obs))
    act_buf, logp_buf, rew_buf = torch.zeros(shape), torch.zeros(shape), torch.zeros(shape)
    done_buf, val_buf = torch.zeros(shape), torch.zeros(shape)

    obs_np, _ = envs.reset(seed=args.seed)
    obs = torch.as_tensor(obs_np, dtype=torch.float32)
    done = torch.zeros(args.num_envs)
    # NextStep autoreset: the step after an episode ends is the reset, its reward ignored.
    resetting = np.zeros(args.num_envs, dtype=bool)
    returns, running = [], np.zeros(args.num_envs)
    batch = args.num_steps * args.num_envs
    updates = max(args.total_timesteps // batch, 1)
    started = time.perf_counter()
    for update in range(1, updates + 1):
        for t in range(args.num_steps):
            obs_buf[t], done_buf[t] = obs, done
            with torch.no_grad():
                action, logp, _, value = agent.act(obs)
            act_buf[t], logp_buf[t], val_buf[t] = action, logp, value
            obs_np, reward, term, trunc, _ = envs.step(action.numpy())
            reward = np.where(resetting, 0.0, reward)
            running += reward
            ended = (term | trunc) & ~resetting
            returns.extend(running[ended].tolist())
            running[ended | resetting] = 0.0
            resetting = term | trunc
            rew_buf[t] = torch.as_tensor(reward, dtype=torch.float32)
            obs = torch.as_tensor(obs_np, dtype=torch.float32)
            done = torch.as_tensor(resetting, dtype=torch.float32)
        with torch.no_grad():  # generalized advantage estimation
            advantages = torch.zeros(shape)
            next_value, last = agent.value(obs), torch.zeros(args.num_envs)
            for t in reversed(range(args.num_steps)):
                not_done = 1.0 - (done if t == args.num_steps - 1 else done_buf[t + 1])
                following = next_value if t == args.num_steps - 1 else val_buf[t + 1]
                delta = rew_buf[t] + args.gamma * following * not_done - val_buf[t]
                last = delta + args.gamma * args.gae_lambda * not_done * last
                advantages[t] = last
            targets = advantages + val_buf
        flat = (obs_buf.reshape(batch, n_obs), act_buf.reshape(batch),
                logp_buf.reshape(batch), advantages.reshape(batch), targets.reshape(batch))
        size = batch // args.minibatches
        for _ in range(args.epochs):
            for idx in torch.randperm(batch).split(size):
                b_obs, b_act, b_logp, b_adv, b_ret = (x[idx] for x in flat)
                _, logp, entropy, value = agent.act(b_obs, b_act.long())
                ratio = (logp - b_logp).exp()
                b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
                policy_loss = torch.max(-b_adv * ratio, -b_adv * ratio.clamp(
                    1 - args.clip, 1 + args.clip)).mean()
                loss = policy_loss + 0.5 * ((value - b_ret) ** 2).mean() - 0.01 * entropy.mean()
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optimizer.step()
        recent = np.mean(returns[-20:]) if returns else float("nan")
        steps = update * batch
        print(f"update {update}/{updates}  steps {steps}  mean return (last 20) {recent:.1f}  "
              f"{steps / (time.perf_counter() - started):,.0f} steps/s", flush=True)
    envs.close()
    print(f"final mean return {np.mean(returns[-20:]) if returns else float('nan'):.1f}")


if __name__ == "__main__":
    main()
