"""Key names of the training configs `--from` reads: what marks each format, and the keys with no memory effect.

Names were read from the tools' schemas (versions in stacks.py): transformers 5.24 `TrainingArguments`,
TRL 1.16 `SFTConfig`/`DPOConfig`/`ModelConfig`, Axolotl 0.18 `utils/schemas/*.py`, LLaMA-Factory
`hparams/*_args.py`. A key listed here as "no memory effect" changes the schedule, the data, logging or
saving, not what one training step holds on the GPU. Keys advisor reads are not listed: configs.py reads them.
"""

from __future__ import annotations

__all__ = ["ATTENTION", "KNOWN", "MARKERS", "OPTIMIZERS", "TRL_DPO_MARKERS", "TRL_ONLY"]

# HF `optim` / Axolotl `optimizer` names -> EstimateSpec.optimizer (transformers OptimizerNames).
OPTIMIZERS = {
    **dict.fromkeys(("adamw_torch", "adamw_torch_fused", "adamw_hf", "adamw_apex_fused", "adamw_torch_npu_fused",
                     "adamw_torch_xla", "adamw_torch_4bit", "adamw"), "adamw"),
    **dict.fromkeys(("adamw_bnb_8bit", "adamw_8bit", "bnb_8bit", "adamw_torch_8bit"), "adamw-8bit"),
    **dict.fromkeys(("paged_adamw_32bit", "paged_adamw"), "paged-adamw"),
    "paged_adamw_8bit": "paged-adamw-8bit",
    "adafactor": "adafactor",
    "sgd": "sgd",
}

# attn_implementation values -> EstimateSpec.attention (SDPA and FlashAttention keep no s×s matrix).
ATTENTION = {"eager": "eager", "sdpa": "sdpa", "flash_attention_2": "flash", "flash_attention_3": "flash",
             "flash": "flash", "fa2": "flash", "xformers": "flash", "kernels-community/flash-attn3": "flash"}

# TrainingArguments fields with no effect on the memory of one step.
_TRAINING_ARGUMENTS = frozenset("""
accelerator_config adam_beta1 adam_beta2 adam_epsilon auto_find_batch_size average_tokens_across_devices
batch_eval_metrics bf16_full_eval data_seed dataloader_drop_last dataloader_in_order
dataloader_multiprocessing_context dataloader_num_workers dataloader_persistent_workers dataloader_pin_memory
dataloader_prefetch_factor ddp_backend ddp_broadcast_buffers ddp_bucket_cap_mb ddp_find_unused_parameters
ddp_static_graph ddp_timeout debug disable_tqdm do_eval do_predict do_train enable_jit_checkpoint
eval_accumulation_steps eval_delay eval_do_concat_batches eval_on_start eval_steps eval_strategy
eval_use_gather_object fp16_full_eval full_determinism gradient_accumulation_steps gradient_checkpointing_kwargs
greater_is_better hub_always_push hub_model_id hub_private_repo hub_revision hub_strategy hub_token
ignore_data_skip include_for_metrics include_num_input_tokens_seen label_names label_smoothing_factor
learning_rate length_column_name load_best_model_at_end local_rank log_level log_level_replica log_on_each_node
logging_dir logging_first_step logging_nan_inf_filter logging_steps logging_strategy lr_scheduler_kwargs
lr_scheduler_type max_grad_norm max_steps metric_for_best_model neftune_noise_alpha num_train_epochs optim_args
output_dir overwrite_output_dir parallelism_config per_device_eval_batch_size prediction_loss_only project
push_to_hub remove_unused_columns report_to restore_callback_states_from_checkpoint resume_from_checkpoint
run_name save_on_each_node save_only_model save_safetensors save_steps save_strategy save_total_limit seed
skip_memory_metrics tf32 torch_compile_backend torch_compile_mode torch_empty_cache_steps trackio_bucket_id
trackio_space_id trackio_static_space_id train_sampling_strategy use_cache use_cpu warmup_ratio warmup_steps
weight_decay group_by_length half_precision_backend per_gpu_train_batch_size per_gpu_eval_batch_size
evaluation_strategy logging_first_step push_to_hub_model_id push_to_hub_organization mp_parameters
activation_checkpointing_kwargs liger_kernel_config optim_target_modules
""".split())

# TRL SFTConfig / DPOConfig / ModelConfig / ScriptArguments fields with no memory effect.
_TRL = frozenset("""
assistant_only_loss chat_template_path completion_only_loss dataset_kwargs dataset_num_proc dataset_text_field
eos_token eval_packing packing_strategy pad_to_multiple_of pad_token shuffle_dataset truncation_mode
trust_remote_code model_init_kwargs router_aux_loss_coef dataset_name dataset_config dataset_train_split
dataset_test_split dataset_streaming gradient_checkpointing_use_reentrant ignore_bias_buffers lora_alpha
lora_task_type model_revision use_rslora bnb_4bit_quant_storage bnb_4bit_quant_type disable_dropout
discopop_tau f_alpha_divergence_coef f_divergence_type label_smoothing ld_alpha loss_weights
ref_model_mixup_alpha ref_model_sync_steps sync_ref_model use_weighting precompute_ref_batch_size
max_prompt_length max_completion_length rpo_alpha reference_free generate_during_eval loss_type
dataset_mixture config
""".split())

_AXOLOTL = frozenset("""
model_type tokenizer_type tokenizer_config tokenizer_use_fast tokenizer_legacy trust_remote_code hub_model_id
hub_strategy hf_use_auth_token datasets test_datasets dataset_prepared_path dataset_processes
dataset_exact_deduplication val_set_size output_dir lora_model_dir lora_alpha lora_fan_in_fan_out wandb_project
wandb_entity wandb_watch wandb_name wandb_run_id wandb_log_model mlflow_tracking_uri mlflow_experiment_name
gradient_accumulation_steps num_epochs max_steps lr_scheduler learning_rate warmup_steps warmup_ratio
evals_per_epoch eval_steps saves_per_epoch save_steps save_strategy save_total_limit logging_steps
weight_decay max_grad_norm train_on_inputs group_by_length early_stopping_patience resume_from_checkpoint
auto_resume_from_checkpoints local_rank debug strict seed special_tokens tokens chat_template
default_system_message pad_to_sequence_len eval_sample_packing sample_packing_eff_est total_num_tokens
eval_table_size eval_max_new_tokens tf32 gptq ddp_timeout ddp_bucket_cap_mb ddp_broadcast_buffers
save_first_step save_safetensors eval_batch_size eval_sequence_len excess_length_strategy shuffle_merged_datasets
remove_unused_columns dataloader_num_workers dataloader_pin_memory dataloader_prefetch_factor
lr_scheduler_kwargs cosine_min_lr_ratio loss_watchdog_threshold loss_watchdog_patience use_tensorboard
embeddings_skip_upcast peft_autocast_adapter_dtype gradient_checkpointing_kwargs flash_attn_cross_entropy
flash_attn_rms_norm flash_attn_fuse_qkv flash_attn_fuse_mlp dpo_beta rl_beta max_prompt_len
""".split())

_LLAMA_FACTORY = frozenset("""
trust_remote_code do_train do_eval do_predict dataset eval_dataset dataset_dir media_dir template max_samples
overwrite_cache preprocessing_num_workers dataloader_num_workers output_dir logging_steps save_steps plot_loss
overwrite_output_dir save_only_model report_to gradient_accumulation_steps learning_rate num_train_epochs
lr_scheduler_type warmup_ratio warmup_steps ddp_timeout val_size per_device_eval_batch_size eval_strategy
eval_steps pref_beta pref_loss pref_ftx lora_alpha resume_from_checkpoint seed max_grad_norm weight_decay
save_strategy save_total_limit enable_thinking tokenized_path streaming buffer_size mix_strategy
interleave_probs logging_dir run_name adapter_name_or_path export_dir export_size export_device
export_legacy_format cache_dir hf_hub_token use_fast_tokenizer resize_vocab split_special_tokens
new_special_tokens default_system train_on_prompt mask_history tool_format use_reentrant_gc
create_new_adapter additional_target loraplus_lr_ratio use_rslora use_dora pissa_init image_max_pixels
video_max_pixels max_steps bf16_full_eval include_num_input_tokens_seen ray_run_name ray_num_workers
""".split())

# Keys that mark a format (used only to tell the formats apart).
MARKERS = {
    "axolotl": frozenset({"base_model", "micro_batch_size", "sequence_len", "adapter", "lora_target_linear",
                          "sample_packing", "num_epochs", "datasets", "dataset_prepared_path", "val_set_size"}),
    "llama-factory": frozenset({"stage", "finetuning_type", "cutoff_len", "lora_target", "quantization_bit",
                                "template", "flash_attn", "disable_gradient_checkpointing", "pure_bf16"}),
    "hf-trainer": frozenset({"per_device_train_batch_size", "output_dir", "optim", "logging_steps",
                             "per_device_eval_batch_size", "overwrite_output_dir", "gradient_accumulation_steps"}),
}
# Keys only TRL's configs have (SFTConfig / DPOConfig / ModelConfig): a TrainingArguments file with one is TRL's.
TRL_ONLY = frozenset({"max_length", "max_seq_length", "packing", "use_peft", "lora_r", "lora_target_modules",
                      "dataset_text_field", "completion_only_loss", "padding_free", "beta", "load_in_4bit",
                      "model_name_or_path", "use_bnb_nested_quant", "activation_offloading", "max_prompt_length"})
TRL_DPO_MARKERS = ("beta", "max_prompt_length", "precompute_ref_log_probs", "rpo_alpha", "reference_free")

_SHARDING = frozenset({"deepspeed", "fsdp", "fsdp_config", "fsdp_version"})
KNOWN = {
    "axolotl": _AXOLOTL | _SHARDING,
    "llama-factory": _LLAMA_FACTORY | _TRAINING_ARGUMENTS | _SHARDING,
    "trl": _TRL | _TRAINING_ARGUMENTS | _SHARDING,
    "hf-trainer": _TRAINING_ARGUMENTS | _SHARDING,
}
